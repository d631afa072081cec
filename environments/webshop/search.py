"""BM25 ranking over the catalogue (Robertson and Zaragoza's Okapi BM25, k1 = 1.2, b = 0.75).

Each product's document is its title, category, attributes, option values and
description. Ties keep catalogue order, so a ranking is deterministic.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric words, with a crude plural fold (roses -> rose)."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        if len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss"):
            tok = tok[:-1]
        out.append(tok)
    return out


class BM25:
    def __init__(self, ids: Sequence[str], documents: Iterable[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.ids = list(ids)
        self.k1, self.b = k1, b
        self.tf = [Counter(tokenize(doc)) for doc in documents]
        if len(self.tf) != len(self.ids):
            raise ValueError("one document per id")
        self.lengths = [sum(c.values()) for c in self.tf]
        self.avg = sum(self.lengths) / max(1, len(self.lengths))
        df = Counter(term for counts in self.tf for term in counts)
        n = len(self.ids)
        # The +1 inside the log keeps every idf positive (Lucene's variant).
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}

    def scores(self, query: str) -> list[float]:
        terms = [t for t in dict.fromkeys(tokenize(query)) if t in self.idf]
        out = []
        for counts, length in zip(self.tf, self.lengths, strict=True):
            s = 0.0
            for t in terms:
                f = counts.get(t, 0)
                if f:
                    s += self.idf[t] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * length / self.avg))
            out.append(s)
        return out

    def rank(self, query: str, among: Sequence[str] | None = None, keep_zero: bool = False) -> list[str]:
        """Ids by descending score (ties: catalogue order); zero scores dropped unless keep_zero."""
        scores = dict(zip(self.ids, self.scores(query), strict=True))
        allowed = None if among is None else set(among)
        pool = self.ids if allowed is None else [i for i in self.ids if i in allowed]
        ranked = sorted(pool, key=lambda i: -scores[i])  # stable: ties keep catalogue order
        return ranked if keep_zero else [i for i in ranked if scores[i] > 0]
