"""The live view's page: one HTML file, script inline, drawing /state with plain SVG."""

from __future__ import annotations

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>normsim live</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d232a; }
header { background: #20303f; color: #fff; padding: 12px 24px; }
header h1 { margin: 0; font-size: 19px; } #meta { color: #c9d3dd; font-size: 13px; }
main { padding: 8px 24px 30px; display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
section { background: #fff; border: 1px solid #dde2e7; border-radius: 6px; padding: 8px 12px; }
h2 { font-size: 15px; margin: 4px 0 8px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 8px; }
.chart h3 { font-size: 12px; margin: 0; font-weight: 600; } .chart .last { color: #4a5561; font-weight: 400; }
svg { width: 100%; height: 80px; background: #fbfcfd; }
table { border-collapse: collapse; font-size: 12px; width: 100%; }
td, th { border-bottom: 1px solid #eef1f4; padding: 2px 6px; text-align: left; }
.bar { display: inline-block; height: 9px; background: #3f88c5; vertical-align: middle; }
.pbar { display: inline-block; height: 9px; background: #f0a24a; vertical-align: middle; }
.wide { grid-column: 1 / -1; }
</style></head><body>
<header><h1 id="title">normsim live</h1><div id="meta">connecting...</div></header>
<main>
<section class="wide"><h2>Step series</h2><div id="charts" class="charts"></div></section>
<section><h2>Latest step's decisions: options chosen (blue) and mean probability (orange)</h2>
<div id="phases"></div></section>
<section><h2>Latest decisions</h2><table id="latest"></table></section>
</main>
<script>
(function () {
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) {
    return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]; }); }
  function fmt(v) { return v === null || v === undefined ? 'n/a' : Number(v).toPrecision(4).replace(/\\.?0+$/, ''); }
  function line(steps, values) {
    var pts = [], lo = Infinity, hi = -Infinity;
    values.forEach(function (v) { if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
    if (lo === Infinity) { return '<svg viewBox="0 0 200 60"></svg>'; }
    if (hi === lo) { hi = lo + 1; lo = lo - 1; }
    var n = Math.max(1, steps.length - 1);
    values.forEach(function (v, i) {
      if (v !== null) { pts.push((4 + 192 * i / n).toFixed(1) + ',' + (56 - 52 * (v - lo) / (hi - lo)).toFixed(1)); }
    });
    return '<svg viewBox="0 0 200 60" preserveAspectRatio="none"><polyline fill="none" stroke="#22577a" ' +
      'stroke-width="1.5" points="' + pts.join(' ') + '"/></svg>';
  }
  function render(s) {
    document.getElementById('title').textContent = 'normsim live: ' + s.title;
    document.getElementById('meta').textContent = 'step ' + s.step + ' of ' + s.total + ' \\u00b7 ' + s.status;
    document.getElementById('charts').innerHTML = s.series.map(function (c) {
      var last = c.values.length ? c.values[c.values.length - 1] : null;
      return '<div class="chart" data-series="' + esc(c.name) + '"><h3>' + esc(c.name) +
        ' <span class="last">' + fmt(last) + '</span></h3>' + line(s.steps, c.values) + '</div>';
    }).join('');
    document.getElementById('phases').innerHTML = Object.keys(s.phases).map(function (name) {
      var ph = s.phases[name];
      return '<h3>' + esc(name) + ' (' + ph.n + ' decisions)</h3><table>' + ph.options.map(function (o) {
        return '<tr><td>' + esc(o.option) + '</td><td><span class="bar" style="width:' + (100 * o.share).toFixed(0) +
          'px"></span> ' + fmt(o.share) + '</td><td><span class="pbar" style="width:' + (100 * o.mean_p).toFixed(0) +
          'px"></span> ' + fmt(o.mean_p) + '</td></tr>';
      }).join('') + '</table>';
    }).join('');
    document.getElementById('latest').innerHTML = '<tr><th>step</th><th>agent</th><th>group</th><th>phase</th>' +
      '<th>chosen</th><th>p</th></tr>' + s.latest.slice().reverse().map(function (d) {
        return '<tr class="decision"><td>' + d.step + '</td><td>' + d.agent + '</td><td>' + esc(d.group) + '</td><td>' +
          esc(d.phase) + '</td><td title="' + esc(d.text || '') + '">' + esc(d.chosen) + '</td><td>' + fmt(d.p) + '</td></tr>';
      }).join('');
  }
  function poll() {
    fetch('/state', {cache: 'no-store'}).then(function (r) { return r.json(); }).then(function (s) {
      render(s);
      if (s.status === 'running') { setTimeout(poll, 1000); }
    }).catch(function () {
      document.getElementById('meta').textContent += ' \\u00b7 the run has ended (no more updates)';
    });
  }
  window.normsimRender = render;
  poll();
})();
</script></body></html>
"""
