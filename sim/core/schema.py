"""Base class for every configuration block, and readable validation errors.

Every block of a scenario derives from :class:`StrictModel`: unknown keys are rejected
with the allowed keys and a did-you-mean hint, and :func:`format_errors` turns a
pydantic ``ValidationError`` into lines that name the field path
(``population[1].policy.rule``) and what is allowed there.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError


class ConfigError(ValueError):
    """A user's configuration mistake; the message is meant to be printed as is."""


class StrictModel(BaseModel):
    # extra="forbid" is a second line of defence; _reject_unknown_keys gives the
    # friendlier message first.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        allowed = set(cls.model_fields)
        unknown = [k for k in data if k not in allowed]
        if unknown:
            parts = []
            for key in unknown:
                hint = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.6)
                parts.append(f"'{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
            raise PydanticCustomError(
                "unknown_key",
                "unknown key {keys}; allowed keys: {allowed}",
                {"keys": ", ".join(parts), "allowed": ", ".join(sorted(allowed))},
            )
        return data


def field_path(loc: tuple[Any, ...]) -> str:
    """('population', 1, 'policy', 'scripted', 'rule') -> 'population[1].policy.rule'.

    Discriminated unions insert the tag (and pydantic's function-validator names)
    into the location; they are not keys the user wrote, so they are dropped.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        if text.startswith(("function-", "tagged-union", "union[")) or "[" in text and text.endswith("]"):
            continue
        if text in _UNION_TAGS:
            continue
        out += ("." if out else "") + text
    return out or "(top level)"


# Tags of discriminated unions that pydantic inserts into error locations. Filled by
# sim.config once the unions are built.
_UNION_TAGS: set[str] = set()


def register_union_tags(tags: set[str]) -> None:
    _UNION_TAGS.update(tags)


def format_errors(err: ValidationError, source: str = "scenario") -> str:
    lines = [f"{source}: {err.error_count()} error(s)"]
    seen = set()
    for e in err.errors(include_url=False):
        path = field_path(tuple(e["loc"]))
        msg = e["msg"]
        if e["type"] == "missing":
            msg = "required field is missing"
        msg = msg.removeprefix("Value error, ")
        # Whole-scenario checks name their own field path ("population[1].policy.rule: ...").
        own_path = re.match(r"^[A-Za-z_][\w\[\].]*: ", msg)
        line = f"  {msg}" if own_path and path == "(top level)" else f"  {path}: {msg}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return "\n".join(lines)
