"""Names people can read for runs, sweep cells and report labels.

A dotted override key becomes its last distinct segments, with a group's name where
the key holds a population index::

    mechanics.punishment.enabled      -> punishment.enabled
    mechanics.social_learning.enabled -> social_learning.enabled
    environment.preset                -> preset
    population.0.persona              -> cooperators.persona   (group 0 is "cooperators")

Two keys never share a label (a shared one grows by a segment until they differ), and a
value that is a filesystem path never enters a name: its place is taken by a short hash
of all the values, as when a name had to be shortened, so two different sets of
overrides never get the same name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Top-level blocks of a scenario: every key starts with one, so it says nothing in a name.
_BLOCKS = {"environment", "mechanics", "population", "run", "backend", "output", "report"}
_UNSAFE = re.compile(r"[^A-Za-z0-9.=_+-]")
MAX_SLUG = 120  # a directory name stays well under 255 bytes with its hash and seed


def key_labels(keys: Iterable[str], group_names: Sequence[str] = ()) -> dict[str, str]:
    """Dotted key -> its readable label; distinct keys get distinct labels."""
    keys = list(dict.fromkeys(str(k) for k in keys))
    parts = {k: _segments(k, group_names) for k in keys}
    width = dict.fromkeys(keys, 2)  # two segments say what a switch is: punishment.enabled
    labels = {k: _label(parts[k], width[k]) for k in keys}
    while True:
        seen: dict[str, int] = {}
        for label in labels.values():
            seen[label] = seen.get(label, 0) + 1
        grow = [k for k in keys if seen[labels[k]] > 1 and width[k] < len(parts[k][1])]
        if not grow:
            return labels
        for k in grow:
            width[k] += 1
            labels[k] = _label(parts[k], width[k])


def _label(parts: tuple[str, list[str]], width: int) -> str:
    fixed, segs = parts
    tail = segs[-(width - 1 if fixed else width) :] if segs else []
    return ".".join([fixed, *tail] if fixed else tail)


def _segments(key: str, group_names: Sequence[str]) -> tuple[str, list[str]]:
    """(a part every label of the key keeps, the segments a label takes from the end)."""
    segs = key.split(".")
    if len(segs) >= 2 and segs[0] == "population" and segs[1].isdigit():
        index = int(segs[1])
        group = group_names[index] if index < len(group_names) else f"group{index}"
        # A group's field always names the group: cooperators.persona, cooperators.policy.temperature.
        return group, segs[2:]
    if len(segs) > 1 and segs[0] in _BLOCKS:
        segs = segs[1:]
    return "", segs


def is_path(value: Any) -> bool:
    """A value that names a file or directory (never part of a name: it says where, not what)."""
    return isinstance(value, str) and ("/" in value or "\\" in value or value.startswith(("~", "./", "../")))


def value_text(value: Any) -> str:
    """A value as a name shows it: true/false, 0.5, rich, [1, 2] as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value).lower() if isinstance(value, str) else str(value)


def params_slug(params: Mapping[str, Any], group_names: Sequence[str] = (), *, hashed: bool = True) -> str:
    """``punishment.enabled=false_social_learning.enabled=false``: a readable, file-safe name.

    A path value is left out and the name is cut at 80 characters; either way a short
    hash of all the values follows (``-h3f2a9c``), so different overrides keep different names
    (``hashed=False`` leaves it to the caller: a sweep cell hashes its whole scenario).
    """
    if not params:
        return ""
    labels = key_labels(params, group_names)
    parts, lossy = [], False
    for key, value in params.items():
        if is_path(value):
            lossy = True
            continue
        part = f"{labels[str(key)]}={value_text(value)}"
        safe = _UNSAFE.sub("", part)
        lossy |= safe != part
        parts.append(safe)
    slug = "_".join(parts)
    if len(slug) > MAX_SLUG:
        cut = slug[:MAX_SLUG]
        # whole key=value parts where one fits: a value cut in half reads as another value
        slug, lossy = (cut[: cut.rfind("_")] if "_" in cut else cut).rstrip("._-"), True
    if lossy and hashed:
        digest = hashlib.sha256(json.dumps(dict(params), sort_keys=True, default=str).encode()).hexdigest()[:7]
        slug = f"{slug}-h{digest}" if slug else f"h{digest}"
    return slug.strip(".")


def labelled(text_keys: Mapping[str, str], text: str) -> str:
    """``text`` with every dotted key in it replaced by its label (longest keys first)."""
    for key in sorted(text_keys, key=len, reverse=True):
        text = text.replace(key, text_keys[key])
    return text


def relabel(table: Any, labels: Mapping[str, str], columns: Sequence[str] = ("factor", "on", "off", "at")) -> Any:
    """A copy of a contrasts table (pandas) with the dotted keys in its text columns labelled."""
    out = table.copy()
    for column in columns:
        if column in out:
            out[column] = [labelled(labels, v) if isinstance(v, str) else v for v in out[column]]
    return out
