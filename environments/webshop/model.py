"""The web shop: a society of shopping agents serving customers' requests in a text shop.

Each step (one Mesa step), in order:

1. **shop**: every shopper that is not suspended takes one action on its current page;
   all decide in one batch. A shopper without a task gets the next one of its own task
   sequence (fixed by the seed and its position, so runs with different policies
   serve the same tasks). A task ends on buy, refuse, or after ``max_actions`` actions.
2. **end of a task**: the purchase is scored (WebShop reward, norms broken from the
   tags, awareness); the customer reviews the shopper publicly (satisfied / neutral /
   offended); the platform detects a violation with ``detect_prob`` and fines and/or
   suspends the shopper, graduated for repeats. The shopper's payoff for the task is
   reward + rating - fine; its wealth sums them.
3. **norm notes** (optional, ``mechanics.norm_notes``): every k steps shoppers vote on
   adding the most reported norm problem to the shared notes that everyone then reads.
4. **social learning**: payoff-biased copying of a random peer's handling strategy
   (the shared Fermi rule), among shoppers that have finished a task; the payoff is
   the mean task payoff over a recent window, or the wealth.

Events: one ``shop`` row per action (``info``: task, kind, country, page, verb,
valid); the row that ends a task also carries ``value`` = reward, ``violation``, and in
``info`` ``end``, outcome, rating, awareness, fine and the norms broken.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
from mesa import DataCollector

from agents.interfaces import Decision, DecisionRequest, Policy
from environments import mechanics
from environments.base import SocietyModel
from environments.webshop import metrics as shop_metrics
from environments.webshop import prompts
from environments.webshop.agents import Shopper
from environments.webshop.config import WebShopConfig
from environments.webshop.observe import menu_for, observation
from environments.webshop.scoring import RATING_NAMES, names_norm, rating, reward
from environments.webshop.shop import Session, Shop, action_text, parse_action
from environments.webshop.tasks import Task, dataset

_LETTERS = re.compile(r"[A-Za-z]")
_BRACKETED = re.compile(r"^\s*(search|click|ask|refuse)\s*\[", re.IGNORECASE)


LETTERS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
MAX_QUERY_WORDS = 12


def parse_free_action(text: str | None) -> str | None:
    """A search-page reply as an action. A scripted shopper's reply is a whole bracketed
    action (``refuse[...]``); an LLM completes ``search[``, so its words up to the first
    ``]`` or line end are the query ("buy roses" is a query too). None when the query is
    malformed: no letters, or rambling on past MAX_QUERY_WORDS words."""
    if text is None:
        return None
    if _BRACKETED.match(text):
        return text.strip().splitlines()[0]
    query = text.split("]")[0].strip().splitlines()[0].strip(" .,:;\"'`[") if text.strip() else ""
    if not _LETTERS.search(query) or len(query.split()) > MAX_QUERY_WORDS:
        return None
    return action_text("search", query[:80])


class WebShopModel(SocietyModel):
    def __init__(self, scenario: Any, policies: Mapping[str, Policy], *, run_id: str = "run") -> None:
        super().__init__(scenario, policies, run_id=run_id)
        self.cfg: WebShopConfig = scenario.environment
        data = dataset()
        self.shop = Shop(data, self.cfg.results_per_page)
        countries = set(self.cfg.countries or [])
        self.tasks: list[Task] = [
            t for t in data.tasks if t.kind in self.cfg.kinds and (not countries or t.country in countries)
        ]
        if not self.tasks:
            raise ValueError("no tasks match the environment's kinds and countries")
        # Task order comes from its own generator so that it does not depend on how many
        # random draws the policies make: the same seed serves the same tasks to any policy.
        self.task_order = np.random.default_rng([scenario.run.seed, 7]).permutation(len(self.tasks))
        self.make_agents(Shopper)
        for slot, agent in enumerate(self.society):
            agent.slot = slot
            if agent.strategy.rule in prompts.HANDLING_NOTES:
                agent.strategy.note = prompts.HANDLING_NOTES[agent.strategy.rule]
                agent.strategy.extra["handling"] = agent.strategy.rule
        m = scenario.mechanics
        self.system = prompts.system_text(sanctions=m.punishment.enabled, notes=m.norm_notes.enabled)
        self.notes: list[str] = []  # norm ids adopted as shared notes
        self.reports: Counter[str] = Counter()  # norm -> public reports (offended reviews, sanctions)
        self.stats: Counter[str] = Counter()
        self.entropies: list[float] = []
        self._menus: dict[int, tuple[str, ...]] = {}  # agent -> the actions its current options stand for
        self.datacollector = DataCollector(model_reporters=shop_metrics.step_reporters())

    # ------------------------------------------------------------------ the step
    def step(self) -> None:
        self.stats, self.entropies = Counter(), []
        shoppers = self.society
        active = [a for a in shoppers if a.suspended == 0]
        for agent in shoppers:  # a suspended shopper sits this step out
            if agent.suspended:
                agent.suspended -= 1
        for agent in active:
            if agent.session is None:
                agent.session = Session(self.shop, self._next_task(agent, len(shoppers)))
        if active:
            requests = [self._request(a) for a in active]
            decisions = self.decide(active, requests)
            for agent, req, dec in zip(active, requests, decisions, strict=True):
                self._act(agent, req, dec)
        self.notes_phase()
        # Only shoppers with a finished task have a payoff to compare; the rest neither
        # learn nor teach (copying at equal zero payoffs would be pure drift).
        self.social_learning_phase([a for a in self.society if a.episodes > 0])
        self.datacollector.collect(self)

    def payoff(self, agent: Shopper) -> float:  # type: ignore[override]
        """What social learning compares: wealth, or (payoff "round") the mean payoff of the
        shopper's last ``learning_window`` tasks (reward + rating - fine)."""
        if self.mechanics.social_learning.payoff == "wealth":
            return agent.wealth
        recent = agent.payoffs[-self.cfg.learning_window :]
        return float(np.mean(recent)) if recent else 0.0

    def learning_info(self, agent: Shopper) -> dict[str, Any]:  # type: ignore[override]
        """'learn' events record the handling strategy (LLM shoppers have no rule, only a note)."""
        return {"rule": agent.strategy.rule, "handling": agent.handling}

    def _next_task(self, agent: Shopper, shoppers: int) -> Task:
        # ``shoppers`` is counted once per step: counting here, per agent, made a step O(n^2).
        k = agent.slot + agent.episodes * shoppers
        return self.tasks[int(self.task_order[k % len(self.tasks)])]

    def _request(self, agent: Shopper) -> DecisionRequest:
        session = agent.session
        assert session is not None
        menu = menu_for(session)
        home = session.page.kind == "home"
        if len(menu) > len(LETTERS):
            raise ValueError(f"a page offers {len(menu)} actions; at most {len(LETTERS)} can be labelled")
        # The search page is a text request over the menu itself (a scripted shopper's reply
        # is a menu entry); every other page is a choice among letters, one per menu entry.
        options = menu if home else LETTERS[: len(menu)]
        prompt = self.no_prompt
        if self.reads_text(agent):  # scripted shoppers read the observation only
            notes = [f"In {self.shop.data.norms[n].country}: {self.shop.data.norms[n].text}" for n in self.notes]
            prompt = prompts.shop_prompt(
                self.system,
                persona=agent.persona,
                note=agent.strategy.note,
                memory=agent.memory_text(),
                notes=notes,
                request=session.task.text,
                reply=session.reply_text(),
                page=session.render(),
                menu=[action + session.detail(action) for action in menu],
                labels=None if home else options,
            )
        self._menus[agent.unique_id] = menu
        return DecisionRequest(
            agent_id=agent.unique_id,
            phase="shop",
            options=options,
            prompt=prompt,
            observation=observation(session, menu, agent.strategy.rule, self.notes),
            kind="text" if home else "choice",
            parse=(lambda text, m=menu: self._parse(text, m)) if home else None,
            fallback=1 if len(menu) > 3 else 0,  # the bare-category search
            max_new_tokens=24,
            stop=("]", "\n") if home else (),  # a query ends at its "]" (parse_free_action)
        )

    @staticmethod
    def _parse(text: str, menu: tuple[str, ...]) -> int | None:
        """A search-page reply -> the menu entry of the same verb (a query maps to the first search)."""
        action = parse_free_action(text)
        if action is None:
            return None
        verb = parse_action(action)[0]  # type: ignore[index]
        for i, entry in enumerate(menu):
            if entry.startswith(verb + "["):
                return i
        return 0  # a verb not valid here (click, buy...): executed, and counted invalid

    def _act(self, agent: Shopper, req: DecisionRequest, dec: Decision) -> None:
        session = agent.session
        assert session is not None
        task, page = session.task, session.page.kind
        menu = self._menus[agent.unique_id]
        if req.kind == "text":
            action = None if dec.parse_failed else parse_free_action(dec.text)
            action = action or menu[req.fallback]
        else:
            action = menu[dec.choice]
        valid = session.step(action)
        parsed = parse_action(action)
        self.stats["actions"] += 1
        self.stats["invalid"] += not valid
        self.stats[f"page_{page}"] += 1
        if req.kind == "choice":
            self.entropies.append(dec.entropy)
        info = {
            "task": task.id,
            "kind": task.kind,
            "country": task.country,
            "page": page,
            "verb": parsed[0] if parsed else "",
            "valid": valid,
            "action": action,
            "request": req.kind,
            "handling": agent.handling,
            **({} if req.kind == "text" else {"menu": list(menu)}),
        }
        if not session.done and session.actions >= self.cfg.max_actions:
            session.outcome = "timeout"
        if session.done:
            self._finish(agent, dec, info)
        else:
            self.annotate(dec, info=info)

    # --------------------------------------------------------------- end of a task
    def _finish(self, agent: Shopper, dec: Decision, info: dict[str, Any]) -> None:
        session, cfg, punish = agent.session, self.cfg, self.mechanics.punishment
        assert session is not None
        task, norm = session.task, self.shop.data.norms[session.task.norm]
        value, broken, bought = 0.0, [], None
        if session.outcome == "buy" and session.purchase is not None:
            pid, chosen = session.purchase
            bought = self.shop.product(pid)
            value, broken = reward(session.want, bought, chosen), task.breaks(bought, chosen)
        violated = bool(broken)
        named = any(names_norm(text, norm, task.text) for text in session.texts)
        aware = session.asked or session.outcome == "refuse" or named
        noticed = violated and bool(self.rng.random() < cfg.offense_prob)
        rate = rating(
            task,
            session.outcome or "timeout",
            violated=violated,
            reward_value=value,
            helpful_threshold=cfg.helpful_threshold,
            noticed=noticed,
        )
        fine, suspended, sanctions_before = 0.0, 0, agent.sanctions
        if violated and punish.enabled and self.rng.random() < punish.detect_prob:
            graduated = mechanics.graduated_fine(
                punish.fine, punish.fine_step, punish.max_fine, agent.sanctions, punish.graduated
            )
            if cfg.sanction in ("fine", "both"):
                fine = graduated
            if cfg.sanction in ("suspend", "both"):
                factor = agent.sanctions + 1 if punish.graduated else 1
                suspended = min(cfg.max_suspend_steps, cfg.suspend_steps * factor)
                agent.suspended = suspended
            agent.sanctions += 1
            self.stats["sanctions"] += 1
            self.stats["fines"] += fine
            self.reports.update(broken)
        if rate < 0 and violated:
            self.reports.update(broken)
        payoff = value + rate - fine
        agent.wealth += payoff
        agent.last_payoff = payoff
        agent.payoffs.append(payoff)
        agent.fines_paid += fine
        agent.reviews.append(rate)
        agent.episodes += 1
        agent.session = None
        helpful = session.outcome == "buy" and not violated and value >= cfg.helpful_threshold
        success = session.outcome == "buy" and value >= 1.0 - 1e-9
        for key, flag in (
            ("episodes", True),
            (f"n_{task.kind}", True),
            ("violations", violated),
            ("aware_" + task.kind, aware),
            ("helpful_" + task.kind, helpful),
            ("violated_" + task.kind, violated),
            ("successes", success),
        ):
            self.stats[key] += int(flag)
        self.stats["reward"] += value
        what = (
            f"bought {bought.title}"
            if bought
            else ("declined the task" if session.outcome == "refuse" else "ran out of time")
        )
        lesson = f" ({norm.text})" if violated and (noticed or fine or suspended) else ""
        penalty = f"; the platform fined you {fine:g}" if fine else ""
        penalty += f" and suspended you for {suspended} steps" if suspended else ""
        agent.remember(
            f"Task in {task.country_name}: you {what}; the customer was {RATING_NAMES[rate]}{lesson}{penalty}."
        )
        self.annotate(
            dec,
            value=value,
            violation=violated,
            info={
                **info,
                "end": True,
                "outcome": session.outcome,
                "reward": value,
                "rating": rate,
                "aware": aware,
                "named": named,
                "asked": session.asked,
                "broken": broken,
                "fine": fine,
                "suspended": suspended,
                "sanctioned": agent.sanctions > sanctions_before,
                "helpful": helpful,
                "success": success,
                "task_actions": session.actions,
                "task_invalid": session.invalid,
            },
        )

    # ---------------------------------------------------------------- norm notes
    def notes_phase(self) -> None:
        cfg = self.mechanics.norm_notes
        if not cfg.enabled or self.steps % cfg.every != 0:
            return
        candidates = [n for n, _ in sorted(self.reports.items(), key=lambda kv: (-kv[1], kv[0])) if n not in self.notes]
        if not candidates:
            return
        candidates = candidates[:4]
        norms = self.shop.data.norms
        labels = ("no new note", *(f"in {norms[n].country}: {norms[n].text}" for n in candidates))
        voters = self.society
        requests = [
            DecisionRequest(
                agent_id=a.unique_id,
                phase="notes",
                options=labels,
                values=tuple(range(len(labels))),
                observation={"rule": a.strategy.rule, "reports": [self.reports[n] for n in candidates]},
                prompt=prompts.vote_prompt(self.system, persona=a.persona, memory=a.memory_text(), options=labels)
                if self.reads_text(a)
                else self.no_prompt,
            )
            for a in voters
        ]
        decisions = self.decide(voters, requests)
        votes = Counter(d.choice for d in decisions)
        winner = min(votes, key=lambda c: (-votes[c], c))
        for dec in decisions:
            self.annotate(dec, value=float(dec.choice), info={"adopted": candidates[winner - 1] if winner else None})
        if winner:
            self.notes.append(candidates[winner - 1])
