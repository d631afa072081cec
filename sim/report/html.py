"""The report page: one self-contained HTML file (CSS, script and PNGs inline, nothing
fetched from a network), readable in any browser straight from the disk."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape

from sim.core.numbers import num
from sim.report.plots import Plot

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
header { background: #20303f; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .meta { color: #c9d3dd; font-size: 13px; }
nav { position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 1px solid #dde2e7; padding: 8px 28px; }
nav a { margin-right: 16px; color: #22577a; text-decoration: none; font-weight: 600; }
main { padding: 8px 28px 40px; max-width: 1100px; }
section { margin-top: 22px; }
h2 { font-size: 18px; border-bottom: 2px solid #dde2e7; padding-bottom: 4px; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #dde2e7; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 14px 0; background: #fff; border: 1px solid #dde2e7; border-radius: 6px; padding: 10px; }
figure h3 { margin: 0 0 6px; font-size: 15px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: #4a5561; font-size: 13px; margin-top: 4px; }
details { margin: 4px 0; }
summary { cursor: pointer; }
details.agent { background: #fff; border: 1px solid #dde2e7; border-radius: 6px; padding: 6px 10px; }
details.agent > summary { font-weight: 600; }
details.turn { border-left: 3px solid #c7d3de; margin: 6px 0 6px 8px; padding: 2px 8px; }
details.turn[open] { border-left-color: #22577a; }
pre { white-space: pre-wrap; word-break: break-word; background: #f3f5f7; padding: 6px 8px; border-radius: 4px; margin: 4px 0; }
table.options { margin: 6px 0; font-size: 13px; }
table.options tr.chosen td { background: #e3f1e6; font-weight: 600; }
td.barcell { width: 160px; }
span.bar { display: inline-block; height: 10px; background: #3f88c5; border-radius: 2px; }
.facts span { margin-right: 12px; font-size: 13px; }
.muted { color: #6a7580; }
.note { background: #fff7e0; border: 1px solid #f0d98c; padding: 6px 10px; border-radius: 4px; }
.badge { font-size: 11px; background: #e8eef4; border-radius: 8px; padding: 1px 7px; margin-left: 4px; }
.badge.bad { background: #fde4e1; color: #9b2c1f; }
.transcript-tools { position: sticky; top: 38px; z-index: 1; background: #f6f7f9; padding: 6px 0; }
#transcript-search { width: 420px; max-width: 60%; padding: 5px 8px; font-size: 14px; }
.status-failed { color: #9b2c1f; font-weight: 600; }
.transcript-filters { margin-top: 6px; font-size: 13px; }
.transcript-filters label { margin-right: 12px; }
.transcript-filters input[type=number] { width: 5em; }
.answer { display: flex; gap: 16px; margin: 6px 0; }
.answer > div { flex: 1; }
.answer p.counted { font-weight: 600; background: #e3f1e6; padding: 6px 8px; border-radius: 4px; margin: 4px 0; }
"""

# Filters the transcript as one types; opens the agents with matches. Texts are
# lower-cased once, so typing stays fast on long transcripts.
SCRIPT = """
(function () {
  var box = document.getElementById('transcript-search');
  if (!box) { return; }
  var turns = Array.prototype.slice.call(document.querySelectorAll('#transcript details.turn'));
  var agents = Array.prototype.slice.call(document.querySelectorAll('#transcript details.agent'));
  var texts = turns.map(function (t) { return t.textContent.toLowerCase(); });
  var count = document.getElementById('transcript-count');
  var filters = Array.prototype.slice.call(document.querySelectorAll('#transcript .transcript-filter'));
  function wanted() {
    var w = {};
    filters.forEach(function (f) { w[f.getAttribute('data-key')] = f.value; });
    return w;
  }
  function passes(t, w) {
    var step = Number(t.getAttribute('data-step'));
    if (w.phase && t.getAttribute('data-phase') !== w.phase) { return false; }
    if (w.group && t.getAttribute('data-group') !== w.group) { return false; }
    if (w.agent && t.getAttribute('data-agent') !== w.agent) { return false; }
    if (w['step-from'] !== '' && w['step-from'] !== undefined && step < Number(w['step-from'])) { return false; }
    if (w['step-to'] !== '' && w['step-to'] !== undefined && step > Number(w['step-to'])) { return false; }
    return true;
  }
  function apply() {
    var q = box.value.trim().toLowerCase(), shown = 0, w = wanted();
    var narrowed = filters.some(function (f) { return f.value !== f.defaultValue && f.value !== ''; });
    turns.forEach(function (t, i) {
      var hit = (!q || texts[i].indexOf(q) >= 0) && passes(t, w);
      t.hidden = !hit;
      if (hit) { shown += 1; }
    });
    agents.forEach(function (a) {
      var any = a.querySelector('details.turn:not([hidden])') !== null;
      a.hidden = !any;
      a.open = Boolean(q || narrowed) && any;
    });
    count.textContent = (q || narrowed) ? shown + ' of ' + turns.length + ' decisions match' : turns.length + ' decisions';
  }
  box.addEventListener('input', apply);
  filters.forEach(function (f) { f.addEventListener('input', apply); f.addEventListener('change', apply); });
  document.getElementById('transcript-expand').addEventListener('click', function () {
    agents.forEach(function (a) { if (!a.hidden) { a.open = true; } });
    turns.forEach(function (t) { if (!t.hidden) { t.open = true; } });
  });
  document.getElementById('transcript-collapse').addEventListener('click', function () {
    agents.concat(turns).forEach(function (d) { d.open = false; });
  });
  apply();
})();
"""


def page(title: str, meta: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """sections: (id, heading, inner HTML)."""
    nav = "".join(f'<a href="#{sid}">{escape(heading)}</a>' for sid, heading, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{escape(heading)}</h2>{inner}</section>' for sid, heading, inner in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><div class="meta">{meta}</div></header>'
        f"<nav>{nav}</nav><main>{body}</main><script>{SCRIPT}</script></body></html>\n"
    )


def figures(plots: Iterable[Plot]) -> str:
    parts = []
    for plot in plots:
        data = base64.b64encode(plot.png).decode("ascii")
        parts.append(
            f'<figure id="plot-{escape(plot.name)}"><h3>{escape(plot.title)}</h3>'
            f'<img src="data:image/png;base64,{data}" alt="{escape(plot.title)}">'
            f"<figcaption>{escape(plot.caption)}</figcaption></figure>"
        )
    return "".join(parts) or "<p>Nothing to plot yet: no step or run has finished.</p>"


def table(header: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[bool] | None = None) -> str:
    """An HTML table; cells are escaped unless they are `Raw`."""
    numeric = list(numeric) if numeric is not None else [False] * len(header)
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for value, is_num in zip(row, numeric, strict=False):
            text = value.html if isinstance(value, Raw) else escape(fmt(value))
            cells.append(f'<td class="num">{text}</td>' if is_num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


class Raw:
    """Trusted HTML for a table cell (a link built here)."""

    def __init__(self, html: str) -> None:
        self.html = html


def fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "" if value != value else num(value)  # NaN -> empty; 7e-15 -> 0
    return str(value)
