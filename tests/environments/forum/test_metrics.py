"""Every forum metric on a hand-made event log whose answers are known."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from environments.forum.metrics import compute, type_entropy
from environments.forum.model import polarisation
from tests.environments.forum.helpers import make_scenario


def row(phase, agent, chosen="x", violation=None, options=("x",), probs=(1.0,), **info):
    p = np.asarray(probs, dtype=float)
    return {
        "step": 1,
        "phase": phase,
        "agent_id": agent,
        "options": list(options),
        "probs": list(p),
        "chosen": chosen,
        "choice": list(options).index(chosen) if chosen in options else 0,
        "violation": violation,
        "entropy": float(-(p[p > 0] * np.log(p[p > 0])).sum()),
        "parse_failed": False,
        "info": json.dumps(info),
    }


def write(agent, item, bad, helpful, kind="comment", misleading=None, source="template"):
    return row(
        "write",
        agent,
        violation=bad,
        item=item,
        rule="spam" if bad else None,
        helpful=helpful,
        kind=kind,
        misleading=misleading,
        label_source=source,
    )


def act(agent, kind, item=None, bad=None, topic=None, options=("do nothing", "upvote #1"), probs=(0.5, 0.5)):
    return row("act", agent, violation=bad, options=options, probs=probs, type=kind, item=item, topic=topic)


EVENTS = pd.DataFrame(
    [
        write(1, 1, True, False, kind="post"),
        write(2, 2, False, True, misleading="spam"),
        write(3, 3, True, False, misleading="spam"),
        write(4, 4, False, False),
        act(2, "report", item=1, bad=True),
        act(3, "report", item=1, bad=True),
        act(3, "report", item=4, bad=False),
        act(1, "post", topic="a"),
        act(1, "post", topic="a"),
        act(2, "post", topic="b"),
        act(4, "nothing", options=("do nothing", "upvote #1", "upvote #2"), probs=(0.5, 0.25, 0.25)),
        row("moderate", -2, "sanction", True, item=1, level="warning"),
        row("moderate", -2, "sanction", False, item=4, level="temp_ban"),
        row("moderate", -2, "sanction", True, item=3, level="perm_ban"),
        row("moderate", -2, "dismiss", False, item=2, level=None),
        *[
            row("guard", -1, "yes" if i in (1, 4) else "no", i in (1, 4), item=i, rule="spam", method="keyword")
            for i in (1, 2, 3, 4)
        ],
        row("learn", 1, "copy"),
    ]
)
STEPS = pd.DataFrame(
    {
        "violation_rate": [0.5, None],
        "cooperation": [0.25, None],
        "banned": [0, 1],
        "stance_polarisation": [0.8, 0.6],
        "karma_gini": [0.1, 0.3],
    }
)


@pytest.fixture(scope="module")
def metrics():
    return compute(EVENTS, STEPS, make_scenario())


def test_violation_and_cooperation(metrics):
    assert metrics["contributions"] == 4
    assert metrics["violation_rate"] == 0.5
    assert metrics["cooperation"] == 0.25  # only item 2 is civil and helpful
    assert metrics["misleading_violation_rate"] == 0.5  # items 2 and 3 sit in the misleading thread
    assert metrics["other_comment_violation_rate"] == 0.0  # item 4 (item 1 is a post)
    assert metrics["violation_rate_by_step"] == [0.5, None]
    assert metrics["cooperation_by_step"] == [0.25, None]


def test_report_precision_and_recall(metrics):
    assert metrics["reports"] == 3
    assert metrics["report_precision"] == pytest.approx(2 / 3)
    assert metrics["report_recall"] == 0.5  # items 1 and 3 violate; only 1 was reported
    assert metrics["flag_recall"] == 0.5  # item 1 reached the threshold of 2


def test_sanctions_and_false_bans(metrics):
    assert metrics["sanctions"] == {"warning": 1, "removal": 0, "temp_ban": 1, "perm_ban": 1}
    assert metrics["false_sanction_rate"] == pytest.approx(1 / 3)
    assert metrics["false_ban_rate"] == 0.5  # the temporary ban hit a civil item
    assert metrics["banned_at_end"] == 1


def test_guardian_quality(metrics):
    assert metrics["guardian_precision"] == {"keyword": 0.5}  # said yes to 1 (right) and 4 (wrong)
    assert metrics["guardian_recall"] == {"keyword": 0.5}  # missed item 3


def test_exploration_entropy(metrics):
    assert metrics["topic_entropy"] == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)))
    assert metrics["mean_member_topic_entropy"] == 0.0  # each member stuck to one topic
    # six decisions split 50/50 between two types, one 50/25/25 over two types (upvotes merge)
    assert metrics["action_type_entropy"] == pytest.approx(math.log(2))
    assert metrics["action_shares"]["post"] == pytest.approx(3 / 7)
    assert type_entropy(["do nothing", "upvote #1", "upvote #2", "report #1"], [0.25] * 4) == pytest.approx(
        -(0.25 * math.log(0.25) + 0.5 * math.log(0.5) + 0.25 * math.log(0.25))
    )
    # member 3 chose report twice; member 1 post twice; member 2 report and post; member 4 nothing
    assert metrics["empirical_action_type_entropy"] == pytest.approx(math.log(2) / 4)
    assert metrics["decisions"] == 11  # act and write rows; learn rows are rules, not decisions


def test_polarisation_and_karma(metrics):
    assert metrics["stance_polarisation"] == {"initial": 0.8, "final": 0.6}
    assert metrics["karma_gini"] == 0.3
    assert polarisation([1.0, -1.0]) == 1.0
    assert polarisation([0.5, 0.5, 0.5]) == 0.0
    assert polarisation([1.0, 1.0, -1.0, -1.0]) == pytest.approx(2 / 3)  # 8 of 12 ordered pairs at distance 2


def test_empty_log_gives_empty_metrics():
    empty = EVENTS.iloc[0:0]
    m = compute(empty, STEPS.iloc[0:0], make_scenario())
    assert m["violation_rate"] is None and m["cooperation"] is None and m["report_precision"] is None
    assert m["sanctions"] == {"warning": 0, "removal": 0, "temp_ban": 0, "perm_ban": 0}
