"""The prefix tree of a batch: every token run that several prompts share, computed once.

A batch's prompts share more than their common prefix (the chat header and the
environment's system text): forum members who follow the same people see the same feed,
a moderator asks every rule about the same item, a web shop's shoppers on one page see
the same page. :func:`plan` finds those runs as a compressed trie over the prompts below
the common prefix: a node is a run of at least ``min_tokens`` tokens that two or more
prompts continue with, at most ``max_depth`` nodes deep (each level costs one forward).
:func:`compute` runs the nodes level by level, each level one batched forward after the
common prefix and its parents' paths, and keeps each node's *path* (its tokens and its
ancestors' below the common prefix) as one batch-1 copy of keys and values. Prompts then
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
    """Every node's path (keys and values from the common prefix's end to the node's
    end), level by level: one forward per level, its rows the level's nodes."""
    if not tree.nodes:
        return None
    paths: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in tree.nodes]
    level = [k for k, node in enumerate(tree.nodes) if node.parent < 0]
    while level:
        level.sort(key=lambda k: (tree.nodes[k].parent, k))  # rows of one parent branch consecutive
        of_row = torch.tensor([tree.nodes[k].parent for k in level])
        parents = Branches(paths, of_row, tree.root) if bool((of_row >= 0).any()) else None
        for k, own in zip(level, _run_level(engine, [tree.nodes[k] for k in level], prefix, parents), strict=True):
            parent = tree.nodes[k].parent
            if parent >= 0:  # a path is its parent's path and then its own run
                own = [
                    (torch.cat([pk, ok], dim=-2), torch.cat([pv, ov], dim=-2))
                    for (pk, pv), (ok, ov) in zip(paths[parent], own, strict=True)
                ]
            paths[k] = own
        done = set(level)
        level = [k for k, node in enumerate(tree.nodes) if node.parent in done]
    return Branches(paths, torch.full((0,), -1, dtype=torch.long), tree.root)


def _run_level(
    engine: Engine, nodes: Sequence[Node], prefix: SharedPrefix | None, parents: Branches | None
) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """One forward of the nodes' own runs (one row each, after the common prefix and
    their parents' paths); each node's per-layer (keys, values) of its run, batch 1."""
    from transformers import DynamicCache

    n, width = len(nodes), max(len(node.tokens) for node in nodes)
    ids = torch.full((n, width), engine.pad_id, dtype=torch.long)
    valid = torch.zeros((n, width), dtype=torch.bool)
    pos = torch.zeros((n, width), dtype=torch.long)
    for r, node in enumerate(nodes):
        length = len(node.tokens)
        ids[r, :length] = torch.tensor(node.tokens)
        valid[r, :length] = True
        pos[r, :length] = torch.arange(node.start, node.end)
    cache = DynamicCache()
    ctx = engine.context("prefix", None, valid, pos, prefix=prefix, branches=parents)
    engine.forward(ctx, ids, cache, keep=torch.zeros((n, 1), dtype=torch.long))
    return [
        [
            (layer.keys[r : r + 1, :, : len(node.tokens)], layer.values[r : r + 1, :, : len(node.tokens)])
            for layer in cache.layers
        ]
        for r, node in enumerate(nodes)
    ]
