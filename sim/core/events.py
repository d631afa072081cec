"""The one schema of an event row: one row of events.parquet per decision.

Environments fill rows through :class:`environments.base.SocietyModel` (``decide``,
``annotate``, ``record_rule_decision``); the logger writes them with this schema; the
conformance suite (:mod:`sim.testing`) checks every environment's rows against it.
Environment-specific facts go into ``info`` (a JSON object).
"""

from __future__ import annotations

import pyarrow as pa

EVENT_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("step", pa.int64()),
        ("phase", pa.string()),
        ("agent_id", pa.int64()),
        ("group", pa.string()),
        ("persona", pa.string()),
        ("policy", pa.string()),
        ("rule", pa.string()),  # the agent's rule or strategy when it decided (social learning changes it)
        ("options", pa.list_(pa.string())),
        ("probs", pa.list_(pa.float64())),
        ("choice", pa.int64()),
        ("chosen", pa.string()),
        ("entropy", pa.float64()),
        ("parse_failed", pa.bool_()),
        ("text", pa.string()),
        ("group_norm", pa.float64()),
        ("value", pa.float64()),
        ("target", pa.int64()),
        ("violation", pa.bool_()),
        ("steer_vector", pa.string()),
        ("steer_coef", pa.float64()),
        ("info", pa.string()),
        # the user part of the prompt a text-reading policy saw (persona, memory, observation);
        # the system text is the same for every agent and is stored once, in prompts.json
        ("prompt", pa.string()),
        ("seed", pa.int64()),
    ]
)
