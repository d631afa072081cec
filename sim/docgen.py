"""Generate the scenario reference (docs/scenario-reference.md) from the pydantic models.

    python -m sim.docgen docs/scenario-reference.md

Every block of a scenario file gets a table (key, type, default, meaning) built from
the models' fields, types, defaults, constraints and descriptions, so the reference
cannot drift from the code; ``tests/sim/test_docs.py`` fails when the committed file
is stale.
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from environments.spec import MechanicsBlock
from sim.core.schema import StrictModel

HEADER = """\
# Scenario reference

A scenario is one YAML file; every block below is validated before anything runs, and
an unknown or misspelt key is an error that names the allowed keys. Any field can be
overridden from the command line with `--set dotted.key=value` (list items by index:
`--set population.0.size=8`). Validate a file with `normsim validate FILE`.

This page is generated from the pydantic models by `python -m sim.docgen
docs/scenario-reference.md`; do not edit it by hand.

Example (`scenarios/commons_scripted.yaml`):

```yaml
{example}
```
"""


def render() -> str:
    import environments
    from sim.config import Scenario

    root = Path(__file__).resolve().parents[1]
    example_path = root / "scenarios" / "commons_scripted.yaml"
    example = example_path.read_text().strip() if example_path.exists() else ""
    seen: set[type] = {StrictModel, MechanicsBlock}  # the per-environment blocks come below
    blocks = list(_walk("", Scenario, None, None, seen))
    env_blocks: list[tuple[Any, list[Walked]]] = []
    for spec in environments.all_specs():
        own = set(seen)  # blocks two environments share (social learning) appear under each
        walked = list(_walk("environment", spec.config, spec.name, None, own))
        walked += list(_walk("mechanics", spec.mechanics, None, spec.name, own))
        if spec.strategy.model_fields:
            walked += list(_walk("population[].strategy", spec.strategy, None, spec.name, own))
        env_blocks.append((spec, walked))
    contents = ["Blocks:", ""]
    for path, _model, tag, scope in blocks + [b for _, walked in env_blocks for b in walked]:
        title = _title(path, tag, scope).replace("`", "")
        contents.append(f"- [{title}](#{_anchor(path, tag, None if tag else scope)})")
    parts = [HEADER.format(example=example), "\n".join(contents) + "\n"]
    parts.extend(_section(path, model, tag, scope) for path, model, tag, scope in blocks)
    for spec, walked in env_blocks:
        parts.append(_environment_intro(spec))
        parts.extend(_section(path, model, tag, scope) for path, model, tag, scope in walked)
    return "\n".join(parts).rstrip() + "\n"


def _environment_intro(spec: Any) -> str:
    """What the environment's spec says beyond its blocks: norm, sanctions, rules, headline."""
    lines = [f"# Environment `{spec.name}`", "", spec.summary[:1].upper() + spec.summary[1:] + ".", ""]
    if spec.norm is not None:
        lines.append(f"- **Norm**: a {spec.norm.kind} ({spec.norm.unit}): {spec.norm.meaning}.")
    if spec.sanctions is not None:
        s = spec.sanctions
        lines.append(f"- **Sanctions**: by {s.by}, on {s.target}; cost: {s.cost} ({s.meaning}).")
    mechanics = "; ".join(f"`{k}`: {v}" for k, v in spec.mechanic_notes.items()) or "none"
    lines.append(f"- **Mechanics** (`mechanics:`): {mechanics}.")
    lines.append(f"- **Scripted rules** (`policy: RULE`): {', '.join(f'`{r}`' for r in spec.rules)}.")
    lines.append(f"- **Headline metrics**: {', '.join(f'`{m}`' for m in spec.headline)}.")
    lines.append(f"- **Example**: `scenarios/{spec.example}`.")
    return "\n".join(lines) + "\n"


Walked = tuple[str, type[BaseModel], str | None, str | None]


def _walk(path: str, model: type[BaseModel], tag: str | None, scope: str | None, seen: set[type]) -> Iterator[Walked]:
    """Depth-first: a block, then the blocks nested in it (each model once). ``scope`` is
    the `type:` of the environment a block belongs to."""
    if model in seen:
        return
    seen.add(model)
    yield path, model, tag, scope
    inner = tag or scope
    for name, info in model.model_fields.items():
        child = f"{path}.{name}" if path else name
        for sub, sub_tag in _models_in(info.annotation):
            key = f"{child}[]" if _is_list(info.annotation) else child
            yield from _walk(key, sub, sub_tag, inner, seen)


def _models_in(annotation: Any) -> list[tuple[type[BaseModel], str | None]]:
    """The models a field can hold, with their `type:` tag when they are union variants."""
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, None)]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    found: list[tuple[type[BaseModel], str | None]] = []
    if origin in (Union, types.UnionType):
        variants = [_strip(a) for a in args if a is not type(None)]
        for arg in variants:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                found.append((arg, _tag(arg) if len(variants) > 1 else None))
            else:
                found.extend(_models_in(arg))
    elif origin in (list, dict, tuple):
        for arg in args:
            found.extend(_models_in(arg))
    return found


def _strip(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(_strip(annotation)) is list


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    if field is not None and typing.get_origin(field.annotation) is Literal:
        return str(typing.get_args(field.annotation)[0])
    return None


def _anchor(path: str, tag: str | None, scope: str | None = None) -> str:
    text = (path or "scenario") + (f"-{scope}" if scope else "") + (f"-{tag}" if tag else "")
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch in "-_")


def _title(path: str, tag: str | None, scope: str | None) -> str:
    title = f"`{path}`" if path else "Top level"
    if tag:
        return title + f" with `type: {tag}`"
    return title + (f" ({scope})" if scope else "")


def _section(path: str, model: type[BaseModel], tag: str | None, scope: str | None) -> str:
    title = _title(path, tag, scope)
    doc = (model.__doc__ or "").strip()
    inherited = BaseModel.__doc__ or ""
    lines = [f'<a id="{_anchor(path, tag, None if tag else scope)}"></a>', f"## {title}", ""]
    if doc and doc != inherited.strip() and not doc.startswith("!!!"):
        lines += [" ".join(doc.split()), ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        child = f"{path}.{name}" if path else name
        lines.append(
            f"| `{name}` | {_type_text(info.annotation, child, tag or scope)} | {_default(info)} | {_meaning(info)} |"
        )
    return "\n".join(lines) + "\n"


def _type_text(annotation: Any, path: str, scope: str | None = None) -> str:
    annotation = _strip(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{_yaml(a)}`" for a in args)
    if origin in (Union, types.UnionType):
        parts = [_type_text(a, path, scope) for a in args if a is not type(None)]
        text = " or ".join(dict.fromkeys(parts))
        return text + (" or `null`" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_text(args[0], path + '[]', scope)}" if args else "list"
    if origin is tuple:
        return f"list of {len(args)}: " + ", ".join(_type_text(a, path, scope) for a in args) if args else "list"
    if origin is dict:
        return (
            f"mapping of {_type_text(args[0], path, scope)} to {_type_text(args[1], path, scope)}"
            if args
            else "mapping"
        )
    if annotation in (StrictModel, MechanicsBlock):  # typed by each environment's spec
        return "block, per environment (see the environment sections below)"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        tag = _tag(annotation)
        if tag and _tagged_union_member(annotation):
            return f"[`{tag}`](#{_anchor(path, tag)})"
        return f"[block](#{_anchor(path, None, scope)})"
    names = {str: "text", int: "integer", float: "number", bool: "boolean", Any: "any"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _tagged_union_member(model: type[BaseModel]) -> bool:
    # Policies and environments are picked by `type:`; other blocks with a `type` field are plain.
    from agents.config import LLMPolicyConfig, ScriptedPolicyConfig

    return model in {LLMPolicyConfig, ScriptedPolicyConfig}


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        return "see block" if isinstance(value, BaseModel) else f"`{_yaml(value)}`"
    if info.default is PydanticUndefined:
        return ""
    return f"`{_yaml(info.default)}`"


def _meaning(info: FieldInfo) -> str:
    text = (info.description or "").replace("|", "\\|").replace("\n", " ")
    limits = []
    for meta in info.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(meta, getattr(annotated_types, attr.capitalize())):
                limits.append(f"{sign} {getattr(meta, attr)}")
        if isinstance(meta, annotated_types.MinLen):
            limits.append(f"at least {meta.min_length} items")
        if isinstance(meta, annotated_types.MaxLen):
            limits.append(f"at most {meta.max_length} items")
        pattern = getattr(meta, "pattern", None)
        if isinstance(pattern, str):
            limits.append(f"matches `{pattern}`")
    if limits:
        text = (text + " " if text else "") + f"({', '.join(limits)})"
    return text


def _yaml(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
        # a list of blocks: name them by their first field (rule ids, topic names)
        names = ", ".join(str(next(iter(v.model_dump().values()))) for v in value)
        return f"{len(value)} entries: {names}"
    if isinstance(value, BaseModel):
        return _yaml(value.model_dump(mode="json"))
    if value == "":
        return '""'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}" if abs(value) < 1e6 else f"{value:.0f}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if not argv or argv[0] == "-":
        sys.stdout.write(text)
    else:
        Path(argv[0]).parent.mkdir(parents=True, exist_ok=True)
        Path(argv[0]).write_text(text, encoding="utf-8")
        print(f"wrote {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
