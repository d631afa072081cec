"""The live view: a running scripted commons served on 127.0.0.1, updating step by step."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import sim
from sim.live import LiveState, LiveView
from sim.live_page import PAGE

SCRIPTED = Path(__file__).resolve().parents[2] / "scenarios" / "commons_scripted.yaml"


DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes through a proxy


def fetch(url: str) -> bytes:
    with DIRECT.open(url, timeout=10) as answer:
        return answer.read()


def test_a_running_commons_updates_its_live_view_after_every_step(tmp_path, capsys):
    seen: list[dict] = []
    url: list[str] = []

    def look(step, row):
        if not url:
            url.append(re.search(r"live view: (http://127\.0\.0\.1:\d+/)", capsys.readouterr().err).group(1))
            assert b"normsim live" in fetch(url[0])  # the page itself
        seen.append(json.loads(fetch(url[0] + "state")))

    overrides = {"run.steps": 5, "mechanics.social_learning.enabled": False, "environment.preset": "rich"}
    result = sim.run(SCRIPTED, out=tmp_path, overrides=overrides, on_step=look, live=True, report=False)
    steps = len(result.steps)
    assert [s["step"] for s in seen] == list(range(1, steps + 1))  # one fresh state per step
    last = seen[-1]
    names = [c["name"] for c in last["series"]]
    assert names[:4] == ["stock", "group_norm", "punishments", "violations"]  # the spec's progress series first
    stock = next(c["values"] for c in last["series"] if c["name"] == "stock")
    assert stock == pytest.approx(result.steps["stock"].tolist())
    assert "seed" not in names  # run bookkeeping is not a series
    harvest = last["phases"]["harvest"]
    assert harvest["n"] == 8 and sum(o["share"] for o in harvest["options"]) == pytest.approx(1.0)
    assert sum(o["mean_p"] for o in harvest["options"]) == pytest.approx(1.0)
    last_events = result.events[result.events["step"] == steps]
    assert {(d["agent"], d["chosen"]) for d in last["latest"] if d["phase"] == "harvest"} == {
        (int(a), c)
        for a, c in zip(
            last_events[last_events.phase == "harvest"].agent_id,
            last_events[last_events.phase == "harvest"].chosen,
            strict=True,
        )
    }
    with pytest.raises(urllib.error.URLError):  # the run is over: nothing is served any more
        fetch(url[0] + "state")


def test_the_view_serves_the_page_and_state_only():
    view = LiveView(LiveState("t", 3))
    try:
        with pytest.raises(urllib.error.HTTPError, match="404"):
            fetch(view.url + "../config.yaml")
        assert json.loads(fetch(view.url + "state"))["status"] == "running"
    finally:
        view.close("finished", grace=0)


NODE_DOM = """
var els = {};
function el(id) { return els[id] = els[id] || { id: id, innerHTML: '', textContent: '' }; }
var document = { getElementById: el };
var window = {};
function fetch() { return new Promise(function () {}); }
SCRIPT
window.normsimRender(STATE);
console.log(JSON.stringify({charts: els.charts.innerHTML, phases: els.phases.innerHTML, latest: els.latest.innerHTML,
  meta: els.meta.textContent}));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node not found: the page's script runs in a stand-in DOM")
def test_the_page_draws_every_series_phase_and_decision():
    state = LiveState("commons", 4, ("stock",))
    events = [
        {
            "step": 1,
            "agent_id": 1,
            "group": "g<1>",
            "phase": "harvest",
            "options": ["a", "b"],
            "probs": [0.25, 0.75],
            "choice": 1,
            "chosen": "b",
            "text": None,
        },
        {
            "step": 1,
            "agent_id": 2,
            "group": "g",
            "phase": "harvest",
            "options": ["a", "b"],
            "probs": [0.5, 0.5],
            "choice": 0,
            "chosen": "a",
            "text": "I take a",
        },
    ]
    state.update(1, {"step": 1, "stock": 90.0, "norm": None, "seed": 0}, events)
    state.update(2, {"step": 2, "stock": 80.0, "norm": 3.0, "seed": 0}, events)
    script = PAGE.split("<script>")[1].split("</script>")[0]
    code = NODE_DOM.replace("SCRIPT", script).replace("STATE", json.dumps(state.snapshot()))
    done = subprocess.run(["node", "-e", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["meta"] == "step 2 of 4 \u00b7 running"
    assert out["charts"].index('data-series="stock"') < out["charts"].index('data-series="norm"')
    assert out["charts"].count("<polyline") == 2 and '<span class="last">80</span>' in out["charts"]
    assert "harvest (2 decisions)" in out["phases"] and "0.625" in out["phases"]  # b: mean p (0.75 + 0.5) / 2
    assert out["latest"].count('class="decision"') == 2 and "g&lt;1&gt;" in out["latest"]  # text is escaped
