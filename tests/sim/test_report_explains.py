"""A run report that explains itself: definitions, counts, n/a reasons, per-agent charts,
transcript filters, written answers beside their option, presentation sensitivity."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import environments
import sim
from sim.report import write_report
from sim.report.definitions import definitions
from sim.report.html import SCRIPT
from sim.report.summary import metrics_table, presentation_html, undefined
from sim.report.transcript import transcript_html
from tests.sim.report_fixtures import tiny_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("env", environments.names())
def test_every_metric_a_report_shows_has_a_definition(env, tmp_path):
    spec = environments.get(env)
    result = sim.run(ROOT / "scenarios" / spec.example, out=tmp_path, overrides={"run.steps": 2}, report=False)
    assert undefined(result.metrics, definitions(env)) == []


def test_a_metric_without_a_definition_is_caught():
    known = definitions("commons")
    assert undefined({"survival_time": 3, "mystery_index": 0.2, "total_gain": {"sum": 1}}, known) == ["mystery_index"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    result = tiny_run(tmp_path_factory.mktemp("explains"))
    return result, result.report.read_text()


def _section(text: str, sid: str) -> str:
    start = text.index(f'<section id="{sid}">')
    return text[start : text.index("</section>", start)]


def test_the_summary_explains_counts_and_gaps(report):
    result, text = report
    summary = _section(text, "summary")
    counts = result.events.groupby("phase").size()
    for phase, n in counts.items():
        assert f'<td>{phase}</td><td class="num">{n}</td>' in summary
    policy_rows = int(counts.drop(labels=["learn"], errors="ignore").sum())
    assert result.metrics["decisions"] == policy_rows
    assert f"The transcript holds {int(counts.sum())} rows: {policy_rows} decisions by the policies" in summary
    # no blank cells: a metric that could not be computed says why
    table = metrics_table({"punishment_precision": None, "brand_new": None, "survival_time": 3})
    assert '<td>punishment_precision</td><td class="num">n/a: no punishment was given</td>' in table
    assert '<td>brand_new</td><td class="num">n/a: nothing in this run to compute it from</td>' in table
    assert '<td class="num"></td>' not in summary
    assert "see metrics.json" not in text


def test_per_agent_values_are_a_chart_and_flat_series_are_not_drawn(report):
    result, text = report
    per_agent = result.metrics["total_gain"]["per_agent"]
    assert 'id="plot-metric_total_gain_per_agent"' in text
    low = min(per_agent.values())
    assert f"{len(per_agent)} values: min {low:.4g}" in text
    # seed and the head count never change in this run: named in the caption, not plotted
    assert re.search(r"Constant, so not drawn: [^<]*seed = 1", text)
    assert (result.dir / "plots" / "metric_total_gain_per_agent.png").stat().st_size > 1000


def test_transcript_rows_carry_what_the_filters_select_on(report):
    result, text = report
    transcript = _section(text, "transcript")
    for key in ("phase", "group", "agent"):
        assert f'data-key="{key}"' in transcript
    first = result.events.iloc[0]
    turn = (
        f'data-step="{int(first.step)}" data-phase="{first.phase}" data-group="{first.group}" '
        f'data-agent="{int(first.agent_id)}"'
    )
    assert turn in transcript
    for phase in result.events["phase"].unique():
        assert f'<option value="{phase}">' in transcript


def test_a_written_answer_shows_beside_the_option_it_counted_as(report):
    result, _ = report
    events = result.events.head(3).copy()
    events["text"] = ["50 tons per month.", None, "no idea"]
    events["parse_failed"] = [False, False, True]
    events["info"] = [json.dumps({"probs_from": "option_scores"}), None, None]
    page = transcript_html(events, {})
    first, third = events.iloc[0], events.iloc[2]
    assert re.search(
        r"Written answer</b><pre>50 tons per month\.</pre></div><div><b>Counted as</b>"
        rf'<p class="counted">{re.escape(str(first.chosen))}</p>',
        page,
    )
    assert "not of the written answer" in page  # the p column is the options' scores
    assert page.count('<div class="answer">') == 2  # the row without text has no answer block
    assert f'<p class="counted">{third.chosen}</p><p class="muted">the answer named no option' in page
    assert "the option read from the answer" in page  # the LLM row (probs_from) was parsed
    custom = events.head(1).assign(info=[None])
    assert "the option the policy chose with this text" in transcript_html(custom, {})


SPREAD = {
    "presentation_spread": {
        "harvest": {
            "measure": "mean share of the stock asked for",
            "n": 40,
            "by_presentation": {"shipped": 0.21, "reversed order": 0.34, "letters": 0.25},
            "spread": 0.13,
        }
    },
    "expected_value_by_phase": {"harvest": 0.23},
}


def test_presentation_sensitivity_section_reads_the_metrics(report, tmp_path):
    result, text = report
    assert 'id="presentation"' not in text  # a scripted run measures no presentation: no section
    run_dir = tmp_path / "run"
    shutil.copytree(result.dir, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text()) | SPREAD
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    page = write_report(run_dir).read_text()
    section = _section(page, "presentation")
    assert "harvest: mean share of the stock asked for (n = 40)" in section
    for name, value in SPREAD["presentation_spread"]["harvest"]["by_presentation"].items():
        assert f'<td>{name}</td><td class="num">{value:.4g}</td>' in section
    assert '<td>spread (max - min)</td><td class="num">0.13</td>' in section
    assert "an effect smaller than the spread says more about prompt layout than about the agents" in section
    defs = _section(page, "definitions")
    assert "<td>presentation_spread</td>" in defs and "<td>expected_value_by_phase</td>" in defs
    assert "(no definition)" not in defs
    assert presentation_html({"presentation_spread": {}}) is None


FAKE_DOM = """
function el(attrs) {
  return { attrs: attrs, hidden: false, open: false, textContent: attrs.text || '', value: attrs.value || '',
    defaultValue: attrs.value || '', listeners: {}, children: [],
    getAttribute: function (k) { return this.attrs[k]; },
    addEventListener: function (k, f) { this.listeners[k] = f; },
    querySelector: function () { return this.children.find(function (c) { return !c.hidden; }) || null; } };
}
var turns = ROWS.map(function (r) { return el(r); });
var agents = {};
turns.forEach(function (t) { var a = t.attrs['data-agent']; agents[a] = agents[a] || el({}); agents[a].children.push(t); });
var filters = [el({'data-key': 'phase'}), el({'data-key': 'group'}), el({'data-key': 'agent'}),
  el({'data-key': 'step-from', value: '1'}), el({'data-key': 'step-to', value: '9'})];
var box = el({}), count = el({});
var byId = {'transcript-search': box, 'transcript-count': count, 'transcript-expand': el({}), 'transcript-collapse': el({})};
var document = { getElementById: function (i) { return byId[i]; },
  querySelectorAll: function (s) {
    if (s.indexOf('details.turn') >= 0) { return turns; }
    if (s.indexOf('details.agent') >= 0) { return Object.values(agents); }
    return filters; } };
SCRIPT
function shown() { return turns.filter(function (t) { return !t.hidden; }).length; }
var out = [shown()];
filters[0].value = 'punish'; filters[0].listeners.change(); out.push(shown());
filters[0].value = ''; filters[3].value = '2'; filters[4].value = '2'; filters[3].listeners.input(); out.push(shown());
filters[3].value = '1'; filters[4].value = '9'; filters[2].value = '3'; filters[2].listeners.change(); out.push(shown());
filters[1].value = 'b'; filters[1].listeners.change(); out.push(shown(), count.textContent);
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node not found: the filter script runs in a stand-in DOM")
def test_the_transcript_filters_select_by_phase_step_agent_and_group():
    rows = [
        {"data-step": "1", "data-phase": "harvest", "data-group": "a", "data-agent": "3"},
        {"data-step": "1", "data-phase": "punish", "data-group": "a", "data-agent": "3"},
        {"data-step": "2", "data-phase": "harvest", "data-group": "b", "data-agent": "4"},
        {"data-step": "2", "data-phase": "punish", "data-group": "b", "data-agent": "4"},
        {"data-step": "3", "data-phase": "harvest", "data-group": "a", "data-agent": "3"},
    ]
    code = FAKE_DOM.replace("ROWS", json.dumps(rows)).replace("SCRIPT", SCRIPT)
    done = subprocess.run(["node", "-e", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [5, 2, 2, 3, 0, "0 of 5 decisions match"]
