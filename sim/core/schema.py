"""Base class for every configuration block, and readable validation errors.

Every block of a scenario derives from :class:`StrictModel`: unknown keys are rejected
with the allowed keys and a did-you-mean hint, and :func:`format_errors` turns a
pydantic ``ValidationError`` into lines that name the field path
(``population[1].policy.rule``) and what is allowed there.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, TypeAlias, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError


class ConfigError(ValueError):
    """A user's configuration mistake; the message is meant to be printed as is."""


# No number in a configuration is meant to be astronomically large: 1e308 tons or a fine
# of 1e300 turn every derived quantity into inf/NaN (and NaN is not JSON).
MAX_MAGNITUDE = 1e12

# JSON-like values for the few free-form fields (a forum graph's generator parameters, a
# sweep's grid values): nesting and sizes are bounded, so a file cannot make them huge.
Scalar: TypeAlias = Union[bool, int, float, str, None]  # noqa: UP007
Leaf: TypeAlias = Union[Scalar, Annotated[list[Scalar], Field(max_length=1000)]]  # noqa: UP007
JsonValue: TypeAlias = Union[  # noqa: UP007
    Leaf,
    Annotated[list[Union[Leaf, Annotated[dict[str, Leaf], Field(max_length=1000)]]], Field(max_length=1000)],  # noqa: UP007
    Annotated[dict[str, Union[Leaf, Annotated[dict[str, Leaf], Field(max_length=1000)]]], Field(max_length=1000)],  # noqa: UP007
]


class StrictModel(BaseModel):
    # extra="forbid" is a second line of defence; _reject_unknown_keys gives the
    # friendlier message first. allow_inf_nan=False: inf and NaN are never a valid setting.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _bounded_numbers(self) -> Any:
        for name in type(self).model_fields:
            value = getattr(self, name, None)
            values = value if isinstance(value, list | tuple) else [value]
            for item in values:
                if isinstance(item, float | int) and not isinstance(item, bool) and abs(item) > MAX_MAGNITUDE:
                    raise ValueError(f"{name}: {item:g} is out of range; allowed: at most {MAX_MAGNITUDE:g} in size")
        return self

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
