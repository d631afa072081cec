"""The prefix tree of a batch: every token run that several prompts share, computed once.

A batch's prompts share more than their common prefix (the chat header and the
environment's system text): forum members who follow the same people see the same feed,
a moderator asks every rule about the same item, a web shop's shoppers on one page see
the same page. :func:`plan` finds those runs as a compressed trie over the prompts below
the common prefix: a node is a run of at least ``min_tokens`` tokens that two or more
prompts continue with, at most ``max_depth`` nodes deep.
:func:`compute` runs all nodes in one forward after the common prefix (each row a subtree
packed as a token tree) and keeps each node's *path* (its tokens and its ancestors'
below the common prefix) as one batch-1 copy of keys and values. Prompts then
run only their own tokens, attending to the common prefix and their node's path through
the cascade attention of :mod:`agents.llm.attention`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from agents.llm.types import Branches, SharedPrefix

if TYPE_CHECKING:
    from agents.llm.engine import Engine


@dataclass(frozen=True)
class Node:
    start: int  # token index (in each member prompt) where the node's own run begins
    end: int  # ... and ends
    parent: int  # node index, -1 for a child of the common prefix
    tokens: tuple[int, ...]  # the node's own run


@dataclass
class Tree:
    """Where each prompt's own tokens begin and which node (path) it continues."""

    root: int  # tokens every prompt shares (the common prefix)
    nodes: list[Node] = field(default_factory=list)
    node_of: list[int] = field(default_factory=list)  # per prompt: its deepest node, -1 for none
    own_start: list[int] = field(default_factory=list)  # per prompt: first token it runs itself

    def order(self, lengths: Sequence[int] | None = None) -> list[int]:
        """Prompt indices grouped by node (rows of one branch must be consecutive); within a
        node by the number of tokens each runs itself, given the prompts' ``lengths``, so
        that a batch split into padded forwards pads little."""
        own = (
            [0] * len(self.node_of)
            if lengths is None
            else [n - s for n, s in zip(lengths, self.own_start, strict=True)]
        )
        return sorted(range(len(self.node_of)), key=lambda i: (self.node_of[i], own[i], i))


def plan(contexts: Sequence[Sequence[int]], root: int, *, min_tokens: int = 16, max_depth: int = 3) -> Tree:
    """The tree of runs below the first ``root`` tokens (which all contexts share); each
    context keeps at least its last token to run itself (its logits are needed)."""
    tree = Tree(root, node_of=[-1] * len(contexts), own_start=[root] * len(contexts))
    limit = [len(c) - 1 for c in contexts]

    def split(members: list[int], start: int, parent: int, depth: int) -> None:
        groups: dict[int, list[int]] = {}
        for i in members:
            if limit[i] > start:
                groups.setdefault(contexts[i][start], []).append(i)
        for group in groups.values():
            branch(group, start, parent, depth)

    def branch(group: list[int], start: int, parent: int, depth: int) -> None:
        if len(group) < 2 or depth >= max_depth:
            return
        end = min(limit[i] for i in group)
        first = contexts[group[0]]
        for i in group[1:]:
            other, k = contexts[i], start
            while k < end and other[k] == first[k]:
                k += 1
            end = k
        if end - start < min_tokens:
            # Too short a run for a forward of its own ("member A." before each member's
            # persona): the subgroups that part after it may share longer runs, which then
            # begin with it (a few tokens run once per subgroup instead of once).
            parts: dict[int, list[int]] = {}
            for i in group:
                if limit[i] > end:
                    parts.setdefault(contexts[i][end], []).append(i)
            for part in parts.values():
                if len(part) < len(group):  # always: the group parts at `end`
                    branch(part, start, parent, depth)
            return
        tree.nodes.append(Node(start, end, parent, tuple(first[start:end])))
        node = len(tree.nodes) - 1
        for i in group:
            tree.node_of[i], tree.own_start[i] = node, end
        split(group, end, node, depth + 1)

    split(list(range(len(contexts))), root, -1, 0)
    return tree


def compute(engine: Engine, tree: Tree, prefix: SharedPrefix | None) -> Branches | None:
    """Every node's path (keys and values from the common prefix's end to the node's end),
    all levels in one forward: each row packs one subtree of the common prefix's children,
    its nodes parents first, each token seeing its node's earlier tokens and every token
    of its ancestors (a token tree, as an item's options): one forward, not one per
    level with every node padded to the level's longest (rows are split into forwards
    only by the engine's budgets and padding, :meth:`Engine.chunks`)."""
    if not tree.nodes:
        return None
    sized = sorted(((sum(len(tree.nodes[k].tokens) for k in m), m) for m in _subtrees(tree)), reverse=True)
    rows = [members for _, members in sized]  # longest first: little padding
    paths: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in tree.nodes]
    for part in engine.chunks([(size, 1) for size, _ in sized]):
        for k, path in _run_packed(engine, tree, [rows[i] for i in part], prefix).items():
            paths[k] = path
    return Branches(paths, torch.full((0,), -1, dtype=torch.long), tree.root)


def _subtrees(tree: Tree) -> list[list[int]]:
    """The nodes below each child of the common prefix, in depth-first order (a node
    before its children)."""
    children: dict[int, list[int]] = {}
    for k, node in enumerate(tree.nodes):
        children.setdefault(node.parent, []).append(k)
    out = []
    for top in children.get(-1, []):
        members, stack = [], [top]
        while stack:
            k = stack.pop()
            members.append(k)
            stack.extend(reversed(children.get(k, [])))
        out.append(members)
    return out


def _run_packed(
    engine: Engine, tree: Tree, rows: Sequence[list[int]], prefix: SharedPrefix | None
) -> dict[int, list[tuple[torch.Tensor, torch.Tensor]]]:
    """One forward of the subtrees ``rows`` (a row each, after the common prefix); each
    node's path: per-layer (keys, values), batch 1, of its ancestors' runs and its own."""
    from transformers import DynamicCache

    n = len(rows)
    width = max(sum(len(tree.nodes[k].tokens) for k in members) for members in rows)
    ids = torch.full((n, width), engine.pad_id, dtype=torch.long)
    valid = torch.zeros((n, width), dtype=torch.bool)
    pos = torch.zeros((n, width), dtype=torch.long)
    visible = torch.zeros((n, width, width), dtype=torch.bool)
    columns: dict[int, torch.Tensor] = {}  # node -> its path's columns in its row
    row_of: dict[int, int] = {}
    for r, members in enumerate(rows):
        at = 0
        for k in members:  # parents come first, so a parent's path is known
            node = tree.nodes[k]
            end = at + len(node.tokens)
            ids[r, at:end] = torch.tensor(node.tokens)
            valid[r, at:end] = True
            pos[r, at:end] = torch.arange(node.start, node.end)
            # each token sees every token of its ancestors' runs and its own run's up to itself
            visible[r, at:end, at:end] = torch.tril(torch.ones((end - at, end - at), dtype=torch.bool))
            own = torch.arange(at, end)
            if node.parent >= 0:
                visible[r, at:end, columns[node.parent]] = True
            columns[k] = own if node.parent < 0 else torch.cat([columns[node.parent], own])
            row_of[k] = r
            at = end
    cache = DynamicCache()
    ctx = engine.context("prefix", None, valid, pos, visible=visible, prefix=prefix)
    engine.forward(ctx, ids, cache, keep=torch.zeros((n, 1), dtype=torch.long))
    return {
        k: [(layer.keys[r : r + 1, :, columns[k]], layer.values[r : r + 1, :, columns[k]]) for layer in cache.layers]
        for k, r in row_of.items()
    }
