"""The guardian judges every new post and comment against the written community rules.

* ``keyword``: a rule is broken when the text contains one of its keywords (P(yes) is 0 or 1);
* ``llm``: a language model scores "does this content break rule X?" as yes/no for every
  rule, with the policy in its system prompt, through the same decide path as members
  (phase ``guard``); P(yes) is the probability of the option "Yes";
* ``both``: the keyword and the LLM judgement, combined as the larger P(yes).

Every judgement is one logged ``guard`` event (value = P(yes), violation = P(yes) >=
threshold, info: item, rule, method). The item keeps the highest P(yes) and its rule.
For generated text the guardian's judgement is the item's label; scripted content keeps
its template's ground truth, so guardian errors on it are measurable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.interfaces import DecisionRequest, Prompt, one_hot
from environments.forum import prompts
from environments.forum.agents import Official
from environments.forum.config import ForumConfig, RuleConfig
from environments.forum.feed import Item

GUARDIAN_GROUP = "__guardian__"
KEYWORD_GROUP = "__keywords__"
YES_NO = prompts.YES_NO


def keyword_match(text: str, rules: Sequence[RuleConfig]) -> str | None:
    """Id of the first rule one of whose keywords occurs in the text (case-insensitive)."""
    low = text.lower()
    return next((r.id for r in rules if any(k.lower() in low for k in r.keywords)), None)


class Guardian:
    def __init__(self, model: Any, cfg: ForumConfig) -> None:
        self.model = model
        self.cfg = cfg
        self.mode = cfg.guardian.mode
        self.threshold = cfg.guardian.threshold
        # Keyword and LLM judgements are logged under separate groups so each row names its method's policy.
        self.official = Official(unique_id=-1, group=GUARDIAN_GROUP)
        self.keywords = Official(unique_id=-1, group=KEYWORD_GROUP)
        self.system = prompts.guardian_system(cfg.rules)
        model.policy_names[KEYWORD_GROUP] = "keyword"
        if self.mode != "keyword":
            # the runner built the guardian's policy (see spec.extra_policies), like any group's
            model.policy_names[GUARDIAN_GROUP] = f"llm:{cfg.guardian.policy.model}"

    def judge(self, items: Sequence[Item], generated: set[int]) -> None:
        """Judge new items; label the generated ones (ids in ``generated``) by the verdict."""
        if not items:
            return
        p_yes: dict[int, dict[str, float]] = {it.id: {} for it in items}
        if self.mode in ("keyword", "both"):
            self._keyword(items, p_yes)
        helpful: dict[int, float] = {}
        if self.mode in ("llm", "both"):
            self._llm(items, generated, p_yes, helpful)
        for it in items:
            scores = p_yes[it.id]
            rule_id = max(scores, key=lambda r: (scores[r], -self._order(r))) if scores else None
            it.guardian_p = scores[rule_id] if rule_id is not None else 0.0
            it.guardian_rule = rule_id if it.guardian_p >= self.threshold else None
            if it.id in generated:
                it.label_source = "guardian"
                it.violation = it.guardian_rule
                # Without a helpfulness judgement, generated content counts as helpful when civil.
                it.helpful = it.violation is None and helpful.get(it.id, 1.0) >= 0.5

    def _order(self, rule_id: str) -> int:
        return [r.id for r in self.cfg.rules].index(rule_id)

    def _keyword(self, items: Sequence[Item], p_yes: dict[int, dict[str, float]]) -> None:
        for it in items:
            hit = keyword_match(it.text, self.cfg.rules)
            if hit is not None:
                p_yes[it.id][hit] = 1.0
            said = int(hit is not None)
            self.model.record_rule_decision(
                self.keywords,
                "guard",
                YES_NO,
                one_hot(2, said),
                said,
                value=float(said),
                violation=bool(said),
                target=it.author,
                info={"item": it.id, "rule": hit, "method": "keyword"},
            )

    def _llm(
        self, items: Sequence[Item], generated: set[int], p_yes: dict[int, dict[str, float]], helpful: dict[int, float]
    ) -> None:
        asks: list[tuple[Item, str]] = []
        requests: list[DecisionRequest] = []
        for it in items:
            for number, rule in enumerate(self.cfg.rules, start=1):
                asks.append((it, rule.id))
                requests.append(
                    self._request(it, prompts.guard_prompt(self.system, text=it.text, rule_number=number, rule=rule))
                )
            if it.id in generated and self.cfg.guardian.judge_helpful:
                asks.append((it, "helpful"))
                requests.append(self._request(it, prompts.helpful_prompt(self.system, text=it.text, topic=it.topic)))
        decisions = self.model.decide([self.official] * len(requests), requests)
        for (it, what), dec in zip(asks, decisions, strict=True):
            p = float(np.asarray(dec.probs)[1])
            if what == "helpful":
                helpful[it.id] = p
                self.model.annotate(
                    dec, value=p, target=it.author, info={"item": it.id, "rule": "helpful", "method": "llm"}
                )
                continue
            p_yes[it.id][what] = max(p, p_yes[it.id].get(what, 0.0))
            self.model.annotate(
                dec,
                value=p,
                violation=p >= self.threshold,
                target=it.author,
                info={"item": it.id, "rule": what, "method": "llm"},
            )

    def _request(self, it: Item, prompt: Prompt) -> DecisionRequest:
        return DecisionRequest(
            agent_id=self.official.unique_id,
            phase="guard",
            options=YES_NO,
            prompt=prompt,
            observation={"rule": None, "item": it.id},
            values=(0.0, 1.0),
        )
