"""Per-row activation steering in one batched forward pass, through forward hooks.

A :class:`Steerer` belongs to one model. It keeps a *bank* per decoder layer: row 0 is
zeros (no steering), each registered vector adds a row. Which row and coefficient
every batch row uses, and at which positions, is plain data set before a forward
(:meth:`Steerer.set_rows`), so steering some agents of a batch and not others never
re-registers a hook. Hooks sit on the decoder layers' outputs (found generically, no
module is replaced) and exist only inside ``with steerer:``, which removes them on
exit, exceptions included.

Positions (:mod:`steering.positions`): the caller describes each forward before it
runs (:meth:`Steerer.prompt`, :meth:`Steerer.generated`, :meth:`Steerer.skip`,
:meth:`Steerer.set_tokens`; the LLM engine does it from its forward context, see
:mod:`steering.engine`); a description serves exactly one forward, so a decoding step
can never reuse the previous step's positions.

Only the selected positions are gathered, transformed and written back (in place);
every other activation is left untouched, so unsteered rows and coefficient 0 are
bit-identical to an unsteered model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from steering.operators import GATEABLE, OPERATORS, cosine_gate
from steering.positions import GENERATED, POSITIONS, generated_kinds, parse_positions, prompt_kinds
from steering.vectors import SteeringVector


class SteeringError(RuntimeError):
    """Steering was asked to do something it cannot do correctly."""


def find_decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of decoder blocks, without knowing its architecture (the one
    finder of normsim: the LLM engine, capture and steering all use it).

    Prefers a ModuleList whose length is the (text) config's layer count; among
    candidates the one holding the most parameters (embeddings are not ModuleLists of
    blocks, and a layer's list of experts holds less than the list of layers).
    """
    config = getattr(model, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    n_cfg = getattr(text, "num_hidden_layers", None)
    best, best_key = None, None
    for _, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(m) for m in module}) != 1:
            continue
        params = sum(p.numel() for p in module.parameters())
        key = (len(module) == n_cfg, params)
        if best_key is None or key > best_key:
            best, best_key = module, key
    if best is None:
        raise SteeringError(f"no list of decoder layers found in {type(model).__name__}")
    return best


@dataclass(frozen=True)
class Entry:
    """One bank row: a registered vector and how it is applied."""

    name: str
    operator: str
    gate: float | None
    layers: frozenset[int]


@dataclass
class _Group:
    pos: torch.Tensor  # flat positions (b * S + s) to steer
    rows: torch.Tensor  # their bank rows
    coef: torch.Tensor  # (n, 1) float32
    operator: str
    gate: float | None


@dataclass
class _Plan:
    layers: dict[int, list[_Group]]  # steered layer -> what to do there
    last_layer: int  # the hooked layer after which the forward's description is used up


@dataclass
class _Desc:
    kinds: torch.Tensor | None  # None: the forward is not steered
    gen_index: torch.Tensor | None
    rows: torch.Tensor | None  # set_rows entry of each batch row


_CONSUMED = object()  # a forward ran; the next one needs a new description


class Steerer:
    """Vector bank + forward hooks for one model. Use as ``with Steerer(model) as s:``."""

    def __init__(
        self, model: nn.Module, *, model_id: str | None = None, blocks: Sequence[nn.Module] | None = None
    ) -> None:
        self.model = model
        self.model_id = model_id or getattr(getattr(model, "config", None), "_name_or_path", None) or None
        self.blocks = blocks if blocks is not None else find_decoder_layers(model)
        self.num_layers = len(self.blocks)
        cfg = getattr(model, "config", None)
        text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        self.hidden_size = int(getattr(text, "hidden_size", 0) or _probe_hidden(self.blocks))
        self.device = next(model.parameters()).device
        self.entries: list[Entry] = [Entry("none", "add", None, frozenset())]
        self.banks: dict[int, torch.Tensor] = {}  # layer -> (R, H) float32
        self.planes: dict[int, torch.Tensor] = {}
        self._handles: dict[int, Any] = {}
        self._attached = False
        self._rows: dict[str, torch.Tensor] | None = None
        self._any_active = False
        # The description of the next forward (set by prompt/generated/skip/set_tokens),
        # turned into a plan by the forward's first hook, once the batch shape is known.
        self._desc: _Desc | object | None = None
        self._plan: _Plan | None = None

    # ------------------------------------------------------------------ the bank
    def add(
        self, vector: SteeringVector, *, operator: str = "add", gate: float | None = None, name: str | None = None
    ) -> int:
        """Register a vector as a new bank row; returns the row index (>= 1)."""
        if operator not in OPERATORS:
            raise ValueError(f"unknown steering operator '{operator}'; allowed: {', '.join(OPERATORS)}")
        if gate is not None and operator not in GATEABLE:
            raise ValueError(f"a cosine gate applies to {sorted(GATEABLE)}, not '{operator}'")
        vector.check(self.hidden_size, self.num_layers, self.model_id)
        if operator == "rotate" and set(vector.planes) != set(vector.directions):
            raise ValueError("the rotate operator needs a plane axis for every layer of the vector (vector.planes)")
        row = len(self.entries)
        self.entries.append(Entry(name or f"{vector.method}#{row}", operator, gate, frozenset(vector.layers)))
        for layer in set(self.banks) | set(vector.layers):
            bank = self.banks.get(layer, torch.zeros(row, self.hidden_size, device=self.device))
            plane = self.planes.get(layer, torch.zeros(row, self.hidden_size, device=self.device))
            new_v = torch.zeros(1, self.hidden_size, device=self.device)
            new_p = torch.zeros(1, self.hidden_size, device=self.device)
            if layer in vector.directions:
                new_v[0] = vector.directions[layer].to(self.device)
                if layer in vector.planes:
                    new_p[0] = vector.planes[layer].to(self.device)
            self.banks[layer] = torch.cat([bank, new_v])
            self.planes[layer] = torch.cat([plane, new_p])
        if self._attached:
            self._register(vector.layers)
        return row

    # --------------------------------------------------------------- per-row data
    def set_rows(
        self,
        index: int | Sequence[int],
        coef: float | Sequence[float],
        positions: str | Sequence[str] = "last_prompt",
        *,
        gen_start: int | Sequence[int] = 0,
        gen_stop: int | None | Sequence[int | None] = None,
    ) -> None:
        """Which bank row, coefficient and positions each batch row uses.

        Scalars apply to every row of any batch. ``positions`` is one spec for all rows
        (``"last_prompt+generated"``) or a list with one spec per row. Generated tokens
        with index in [gen_start, gen_stop) are steered (default: all of them).
        """
        idx = torch.as_tensor([index] if isinstance(index, int) else list(index), dtype=torch.long)
        n = len(idx)
        specs = [positions] * n if isinstance(positions, str) else list(positions)
        if int(idx.min()) < 0 or int(idx.max()) >= len(self.entries):
            raise ValueError(f"bank row out of range 0..{len(self.entries) - 1}: {idx.tolist()}")
        self._rows = {
            "index": idx,
            "coef": _column(coef, n, torch.float32),
            "bits": _column([parse_positions(p) for p in specs], n, torch.long),
            "gen_start": _column(gen_start, n, torch.long),
            "gen_stop": _column(_no_limit(gen_stop), n, torch.long),
        }
        self._any_active = bool(self.active_rows().any())
        self._desc = self._plan = None

    def clear_rows(self) -> None:
        self._rows = None
        self._any_active = False
        self._desc = self._plan = None

    def active_rows(self) -> torch.Tensor:
        """(n,) bool: rows that steer anything (a non-zero bank row and coefficient)."""
        if self._rows is None:
            return torch.zeros(0, dtype=torch.bool)
        r = self._rows
        return (r["index"] != 0) & (r["coef"] != 0) & (r["bits"] != 0)

    def needs_own_prefix(self) -> torch.Tensor:
        """(n,) bool: active rows that steer all prompt tokens, so cannot share an
        unsteered prefix cache with other rows."""
        if self._rows is None:
            return torch.zeros(0, dtype=torch.bool)
        return self.active_rows() & (self._rows["bits"] & POSITIONS["all_prompt"] != 0)

    # ------------------------------------------------------- per-forward positions
    def prompt(
        self,
        valid: torch.Tensor,
        *,
        last: bool = True,
        after_shared_prefix: bool = False,
        rows: Sequence[int] | None = None,
    ) -> None:
        """The next forward is a padded chunk of prompt tokens (left or right padding).

        ``valid`` (B, S) marks real tokens; ``last``: the chunk ends the prompt, so each
        row's final real token is its last prompt token; ``after_shared_prefix``: an
        unsteered shared prefix precedes the chunk, which rows steering all prompt
        tokens forbid; ``rows``: the :meth:`set_rows` entry of each batch row.
        """
        if after_shared_prefix and bool(self.needs_own_prefix().any()):
            raise SteeringError("rows steering all prompt tokens cannot reuse an unsteered shared prefix")
        self.set_tokens(prompt_kinds(valid, last=last), rows=rows)

    def generated(
        self, gen_index: int | torch.Tensor, *, valid: torch.Tensor | None = None, rows: Sequence[int] | None = None
    ) -> None:
        """The next forward holds generated tokens; ``gen_index``: each token's index
        counted from the start of generation (an int for a one-token decoding step
        shared by all rows, else (B, S)); ``valid`` marks real tokens of padded chunks."""
        self.set_tokens(*generated_kinds(gen_index, valid), rows=rows)

    def skip(self) -> None:
        """The next forward is not steered at all (e.g. the shared-prefix prefill)."""
        self._desc, self._plan = _Desc(None, None, None), None

    def set_tokens(
        self, kinds: torch.Tensor, gen_index: torch.Tensor | None = None, *, rows: Sequence[int] | None = None
    ) -> None:
        """Describe the next forward: kinds (B, S) of PAD/PROMPT/LAST/GENERATED, for
        generated tokens their index from the start of generation, and optionally the
        :meth:`set_rows` entry of each batch row (default: row b is entry b). A single
        row of kinds, and rows given as scalars in :meth:`set_rows`, broadcast."""
        kinds = torch.as_tensor(kinds, dtype=torch.long).cpu()
        gi = None if gen_index is None else torch.as_tensor(gen_index, dtype=torch.long).cpu()
        sel = None if rows is None else torch.as_tensor(list(rows), dtype=torch.long)
        self._desc, self._plan = _Desc(kinds, gi, sel), None

    def _build(self, desc: _Desc, shape: tuple[int, int]) -> _Plan:
        last = max(self._handles, default=-1)
        if desc.kinds is None or not self._any_active:
            return _Plan({}, last)
        assert self._rows is not None
        B, S = shape
        rows = self._rows
        if desc.rows is not None:
            rows = {k: (v if len(v) == 1 else v[desc.rows]) for k, v in rows.items()}
        rows = {k: (v.expand(B) if len(v) == 1 else v) for k, v in rows.items()}
        kinds = desc.kinds.expand(B, -1) if desc.kinds.shape[0] == 1 else desc.kinds
        if tuple(kinds.shape) != shape or len(rows["index"]) != B:
            raise SteeringError(
                f"steering was described for {len(rows['index'])} row(s) and token kinds of shape "
                f"{tuple(desc.kinds.shape)}, the forward has shape {shape}"
            )
        sel = (kinds & rows["bits"][:, None]) != 0
        if desc.gen_index is not None:
            gi = desc.gen_index.expand(B, S)
            outside = (gi < rows["gen_start"][:, None]) | (gi >= rows["gen_stop"][:, None])
            sel &= ~((kinds == GENERATED) & outside)
        sel &= ((rows["index"] != 0) & (rows["coef"] != 0))[:, None]
        pos = sel.reshape(-1).nonzero().squeeze(1)
        return self._make_plan(pos, rows["index"][pos // S], rows["coef"][pos // S])

    def _make_plan(self, pos: torch.Tensor, bank_rows: torch.Tensor, coefs: torch.Tensor) -> _Plan:
        # Positions are split by the layers their row's vector covers and by operator;
        # layers with identical coverage share their groups.
        by_cover: dict[tuple[int, ...], list[_Group]] = {}
        layers: dict[int, list[_Group]] = {}
        for layer in self._handles:
            covers = torch.tensor([layer in e.layers for e in self.entries])
            key = tuple(torch.nonzero(covers).flatten().tolist())
            if key not in by_cover:
                by_cover[key] = self._groups(pos, bank_rows, coefs, covers[bank_rows])
            if by_cover[key]:
                layers[layer] = by_cover[key]
        return _Plan(layers=layers, last_layer=max(self._handles, default=-1))

    def _groups(
        self, pos: torch.Tensor, bank_rows: torch.Tensor, coefs: torch.Tensor, keep: torch.Tensor
    ) -> list[_Group]:
        kinds = sorted({(e.operator, e.gate) for e in self.entries[1:]}, key=str)
        code = torch.tensor([kinds.index((e.operator, e.gate)) if i else -1 for i, e in enumerate(self.entries)])
        groups = []
        for k, (operator, gate) in enumerate(kinds):
            m = keep & (code[bank_rows] == k)
            if bool(m.any()):
                to = self.device
                groups.append(_Group(pos[m].to(to), bank_rows[m].to(to), coefs[m].to(to)[:, None], operator, gate))
        return groups

    # ------------------------------------------------------------------- hooks
    def __enter__(self) -> Steerer:
        self.attach()
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def attach(self) -> None:
        if self._attached:
            return
        self._attached = True
        try:
            self._register(self.banks)
        except BaseException:
            self.detach()
            raise

    def detach(self) -> None:
        for handle in self._handles.values():
            handle.remove()
        self._handles.clear()
        self._attached = False
        self._desc = self._plan = None

    @property
    def attached(self) -> bool:
        return self._attached

    def _register(self, layers: Any) -> None:
        for layer in sorted(layers):
            if layer not in self._handles:
                self._handles[layer] = self.blocks[layer].register_forward_hook(self._make_hook(layer))
        self._plan = None  # a plan covers the hooked layers, which just changed

    def _make_hook(self, layer: int) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            desc = self._desc
            if not isinstance(desc, _Desc):
                if self._any_active:
                    raise SteeringError(
                        "steered rows are set but this forward was not described (a description serves one "
                        "forward): call prompt(), generated(), skip() or set_tokens() before every forward"
                    )
                return None
            h = output[0] if isinstance(output, tuple) else output
            if self._plan is None:
                self._plan = self._build(desc, (int(h.shape[0]), int(h.shape[1])))
            plan = self._plan
            if layer == plan.last_layer:
                self._desc, self._plan = _CONSUMED, None
            groups = plan.layers.get(layer)
            if not groups:
                return None
            replaced = not h.is_contiguous()
            if replaced:
                h = h.contiguous()
            flat = h.view(-1, h.shape[-1])
            for g in groups:
                sub = flat.index_select(0, g.pos).float()
                v = self.banks[layer].index_select(0, g.rows)
                b = self.planes[layer].index_select(0, g.rows) if g.operator == "rotate" else None
                out = OPERATORS[g.operator](sub, v, g.coef, b)
                if g.gate is not None:
                    out = torch.where(cosine_gate(sub, v, g.gate), out, sub)
                flat.index_copy_(0, g.pos, out.to(flat.dtype))
            if not replaced:
                return None
            return (h, *output[1:]) if isinstance(output, tuple) else h

        return hook


def _column(value: Any, n: int, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(value, (int, float)):
        return torch.full((n,), value, dtype=dtype)
    t = torch.as_tensor(list(value), dtype=dtype)
    if len(t) != n:
        raise ValueError(f"expected {n} values, got {len(t)}")
    return t


def _no_limit(stop: int | None | Sequence[int | None]) -> int | list[int]:
    if stop is None or isinstance(stop, int):
        return 2**62 if stop is None else stop
    return [2**62 if s is None else s for s in stop]


def _probe_hidden(blocks: nn.ModuleList) -> int:
    for p in blocks[0].parameters():
        return int(p.shape[-1])
    raise SteeringError("cannot infer the hidden size")
