"""The forum: members on a follow graph post, comment, vote, report and follow under
written community rules, judged by a guardian and policed by a moderator.

Each step (one Mesa step), in order:

1. **bans**: temporary bans that ran out are lifted; banned members cannot act;
2. **act**: every member still allowed is activated with ``activation_prob``, sees its
   feed (hot-ranked or followed-and-recent) and picks one option: do nothing, post about
   a topic, comment on, upvote, downvote or report a feed item, follow an author
   (one batched decide, phase ``act``); votes change the author's karma at once;
3. **write**: members who post or comment write it (phase ``write``, kind text):
   templates for scripted members, generated text for LLM members (a malformed reply
   falls back to a template and counts as parse_failed);
4. **guard**: the guardian judges every new item (keyword rules, an LLM, or both);
5. **moderate**: reported items past the threshold are reviewed within the budget and
   sanctioned up the ladder (warning, removal, temporary ban, permanent ban);
6. **social learning**: members compare karma gains with one graph neighbour and copy
   its strategy (rule, style, stance) by the Fermi rule.

Members see consequences only (votes, labels, sanctions); no reward is in any prompt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
from mesa import DataCollector

from agents.agent import Strategy
from agents.interfaces import Decision, DecisionRequest, Policy
from environments.base import SocietyModel
from environments.forum import prompts, templates
from environments.forum.agents import Member
from environments.forum.config import ForumConfig
from environments.forum.feed import Action, FeedIndex, Forum, Item, action_menu, build_feed
from environments.forum.guardian import Guardian
from environments.forum.moderation import Moderation
from sim.core.stats import gini


def build_graph(generator: str, params: Mapping[str, Any], ids: Sequence[int], seed: int) -> nx.DiGraph:
    """The follow graph over member ids: an edge a -> b means a follows b. Undirected
    generators give mutual follows; the generator always gets the run's seed."""
    g = getattr(nx, generator)(n=len(ids), seed=seed, **params)
    g = nx.DiGraph(g) if g.is_directed() else g.to_directed()
    g.remove_edges_from(list(nx.selfloop_edges(g)))
    return nx.relabel_nodes(g, dict(enumerate(ids)))


def polarisation(stances: Sequence[float]) -> float:
    """Mean pairwise stance distance, halved: 0 when all agree, 1 for two camps at -1 and +1.

    Sorted form, O(n log n) (the pairwise matrix would be 80 GB at 100,000 members):
    sum over ordered pairs of |s_i - s_j| = 2 sum_k (2k - n + 1) s_(k), k from 0."""
    s = np.sort(np.asarray(stances, dtype=np.float64))
    n = s.size
    if n < 2:
        return 0.0
    pairs = 2.0 * float(((2.0 * np.arange(n) - n + 1) * s).sum())
    return max(0.0, pairs / (n * (n - 1)) / 2.0)


class ForumModel(SocietyModel):
    def __init__(self, scenario: Any, policies: Mapping[str, Policy], *, run_id: str = "run") -> None:
        super().__init__(scenario, policies, run_id=run_id)
        self.cfg: ForumConfig = scenario.environment
        cfg = self.cfg
        self.forum = Forum()
        self.tally: Counter[str] = Counter()
        self._peer_index: tuple[Any, dict[int, Member]] = (None, {})
        members = self.make_agents(Member)
        self.members: dict[int, Member] = {a.unique_id: a for a in members}
        for agent in members:
            self._init_strategy(agent)
        self.graph = build_graph(
            cfg.graph.generator, cfg.graph.params, [a.unique_id for a in members], scenario.run.seed
        )
        self.threshold = cfg.moderation.report_threshold
        self.topics = [t.name for t in cfg.topics]
        self.system = prompts.member_system(cfg.rules, self.topics)
        self.guardian = Guardian(self, cfg)
        self.moderation = Moderation(self, cfg)
        self._seed_threads()
        self.datacollector = DataCollector(
            model_reporters={
                **{k: (lambda m, k=k: int(m.tally[k])) for k in _COUNTS},
                "violation_rate": lambda m: (
                    m.tally["violations"] / m.tally["contributions"] if m.tally["contributions"] else None
                ),
                "cooperation": lambda m: (
                    m.tally["cooperative"] / m.tally["contributions"] if m.tally["contributions"] else None
                ),
                "banned": lambda m: sum(a.banned(int(m.steps)) for a in m.society),
                "mean_karma": lambda m: float(np.mean([a.wealth for a in m.society])),
                "karma_gini": lambda m: gini([a.wealth for a in m.society]),
                "stance_polarisation": lambda m: polarisation([a.stance for a in m.society]),
                "provocative_share": lambda m: float(np.mean([a.style == "provocative" for a in m.society])),
                "items": lambda m: len(m.forum.items),
                "removed": lambda m: sum(it.removed for it in m.forum.items.values()),
            }
        )

    # ------------------------------------------------------------------- set-up
    def initial_strategy(self, group: Any) -> Strategy:
        own = group.strategy.report_prob
        report_prob = self.mechanics.reporting.report_prob if own is None else own
        return Strategy(
            rule=group.policy.rule if group.policy.type == "scripted" else None, extra={"report_prob": report_prob}
        )

    def _init_strategy(self, agent: Member) -> None:
        cfg = self.cfg
        if agent.group in cfg.group_stance:
            stance = cfg.group_stance[agent.group]
        elif cfg.initial_stance == "uniform":
            stance = float(self.rng.uniform(-1.0, 1.0))
        else:
            stance = float(self.rng.choice([-1.0, 1.0]) * self.rng.uniform(0.3, 1.0))
        # Scripted members' style follows their rule; LLM members start from their persona's.
        agent.strategy.extra = {
            "report_prob": agent.strategy.extra["report_prob"],
            "stance": round(stance, 4),
            "style": "provocative" if agent.persona == "selfish" else "civil",
        }
        agent.strategy.extra["style"] = agent.style
        agent.strategy.note = prompts.STYLES[agent.style]

    def _seed_threads(self) -> None:
        for s in self.cfg.seed_threads:
            post = templates.seed_post(s.topic)
            p = self.forum.add(
                kind="post",
                author=None,
                step=0,
                topic=s.topic,
                thread=0,
                text=post.text,
                misleading=s.endorses,
                base_score=s.score,
                label_source="seed",
            )
            p.thread = p.id
            rule = self.cfg.rule(s.endorses)
            for _ in range(s.comments):
                c = templates.endorsing(rule.id, rule.text)
                self.forum.add(
                    kind="comment",
                    author=None,
                    step=0,
                    topic=s.topic,
                    thread=p.id,
                    text=c.text,
                    endorses=rule.id,
                    base_score=1,
                    label_source="seed",
                )

    def author(self, item: Item) -> Member | None:
        return self.members.get(item.author) if item.author is not None else None

    def following(self, agent: Member) -> set[int]:
        return set(self.graph.successors(agent.unique_id))

    # ------------------------------------------------------------------ the step
    def step(self) -> None:
        self.tally = Counter()
        now = int(self.steps)
        for agent in self.society:
            agent.last_payoff = 0.0
            if agent.banned_until is not None and now > agent.banned_until:
                agent.banned_until = None
                agent.remember(f"Step {now}: your temporary ban ended.")
        active = [a for a in self.society if not a.banned(now) and self.rng.random() < self.cfg.activation_prob]
        self.tally["active"] = len(active)
        writers = self.act_phase(active)
        self.write_phase(writers)
        self.moderation.step()
        self.social_learning_phase()
        self.datacollector.collect(self)

    def act_phase(self, active: Sequence[Member]) -> list[tuple[Member, Action]]:
        """One decision per active member; applies votes, reports and follows; returns
        who writes what (posts and comments are written in the next phase)."""
        if not active:
            return []
        menus, requests = [], []
        # Nothing changes the forum until every member has decided: rank it once for all.
        index = FeedIndex(self.forum, int(self.steps), self.cfg.feed)
        for agent in active:
            following = self.following(agent)
            feed = build_feed(self.forum, agent.unique_id, following, int(self.steps), self.cfg.feed, index)
            menu = action_menu(agent.unique_id, feed, self.topics, following, agent.voted, agent.reported)
            menus.append(menu)
            labels = tuple(a.label for a in menu)
            requests.append(
                DecisionRequest(
                    agent_id=agent.unique_id,
                    phase="act",
                    options=labels,
                    observation=self._act_observation(agent, menu),
                    prompt=prompts.act_prompt(
                        self.system,
                        persona=agent.persona,
                        note=agent.strategy.note,
                        stance=agent.stance,
                        memory=agent.memory_text(),
                        karma=agent.wealth,
                        feed=prompts.feed_text(feed, self.threshold),
                        options=labels,
                    )
                    if self.reads_text(agent)
                    else self.no_prompt,
                )
            )
        decisions = self.decide(active, requests)
        writers = []
        for agent, menu, dec in zip(active, menus, decisions, strict=True):
            action = menu[dec.choice]
            self._apply(agent, action, dec)
            if action.type in ("post", "comment"):
                writers.append((agent, action))
        return writers

    def _act_observation(self, agent: Member, menu: Sequence[Action]) -> dict[str, Any]:
        actions = []
        for a in menu:
            it = self.forum.items[a.item] if a.item is not None else None
            other = self.members.get(a.author) if a.author is not None else None
            their = it.stance if it is not None else (other.stance if other is not None else 0.0)
            topic = self.cfg.topic(a.topic) if a.topic is not None else None
            actions.append(
                {
                    "type": a.type,
                    "topic": a.topic,
                    "invites": bool(topic and topic.invites),
                    "bad": bool(it and it.violation),
                    "agree": None if their == 0 else (their >= 0) == (agent.stance >= 0),
                    "labelled": bool(it and len(it.reporters) >= self.threshold),
                    "score": it.score if it else 0,
                    "misleading": bool(it and self.forum.items[it.thread].misleading),
                }
            )
        return {
            "rule": agent.strategy.rule,
            "stance": agent.stance,
            "report_prob": agent.strategy.extra["report_prob"],
            "karma": agent.wealth,
            "actions": actions,
        }

    def _apply(self, agent: Member, action: Action, dec: Decision) -> None:
        it = self.forum.items[action.item] if action.item is not None else None
        author = self.author(it) if it is not None else self.members.get(action.author) if action.author else None
        if action.type in ("upvote", "downvote"):
            assert it is not None
            (it.up if action.type == "upvote" else it.down).add(agent.unique_id)
            agent.voted.add(it.id)
            if author is not None:
                delta = 1.0 if action.type == "upvote" else -1.0
                author.wealth += delta
                author.last_payoff += delta
        elif action.type == "report":
            assert it is not None
            it.reporters.add(agent.unique_id)
            agent.reported.add(it.id)
            self.tally["reports"] += 1
        elif action.type == "follow":
            self.graph.add_edge(agent.unique_id, action.author)
        if action.type != "nothing":
            agent.remember(f"Step {int(self.steps)}: you chose to {_describe(action, it)}.")
        self.annotate(
            dec,
            target=author.unique_id if author is not None else None,
            violation=None if it is None else it.violation is not None,
            info={"type": action.type, "item": action.item, "topic": action.topic},
        )

    def write_phase(self, writers: Sequence[tuple[Member, Action]]) -> None:
        if not writers:
            return
        agents, requests, contexts = [], [], []
        for agent, action in writers:
            parent = self.forum.items[action.item] if action.type == "comment" else None
            topic = parent.topic if parent is not None else action.topic
            thread = self.forum.items[parent.thread] if parent is not None else None
            replies = self.forum.thread_comments(parent.id) if parent is not None else []
            misleading = thread.misleading if thread is not None else None
            invited = self.cfg.topic(topic).invites
            rule_id = misleading or invited or self.cfg.rules[int(self.rng.integers(len(self.cfg.rules)))].id
            fallback = templates.helpful(topic, agent.stance, self.rng)
            scripted = agent.strategy.rule is not None
            if scripted:
                options = [
                    fallback,
                    templates.chatter(self.rng),
                    templates.violating(rule_id, self.cfg.rule(rule_id).text, topic, self.rng),
                ]
            else:
                options = [fallback]
            agents.append(agent)
            contexts.append((agent, parent, topic, options, misleading))
            requests.append(
                DecisionRequest(
                    agent_id=agent.unique_id,
                    phase="write",
                    options=tuple(t.text for t in options),
                    kind="text",
                    parse=None if scripted else prompts.parse_text,
                    fallback=0,
                    max_new_tokens=self.cfg.text_tokens,
                    stop=("\n",),  # a post is its reply's first line (prompts.clean_text)
                    observation={
                        "rule": agent.strategy.rule,
                        "labels": [t.kind for t in options],
                        "misleading": misleading is not None,
                        "invites": invited is not None,
                        "thread_violations": sum(c.violation is not None for c in replies),
                        "conform_prob": self.cfg.conform_prob,
                    },
                    prompt=prompts.write_prompt(
                        self.system,
                        persona=agent.persona,
                        note=agent.strategy.note,
                        stance=agent.stance,
                        memory=agent.memory_text(),
                        karma=agent.wealth,
                        topic=topic,
                        parent=parent,
                        replies=replies,
                    )
                    if self.reads_text(agent)
                    else self.no_prompt,
                )
            )
        decisions = self.decide(agents, requests)
        created, generated = [], set()
        for (agent, parent, topic, options, misleading), dec in zip(contexts, decisions, strict=True):
            own = None if agent.strategy.rule is not None or dec.parse_failed else prompts.clean_text(dec.text or "")
            template = options[dec.choice] if own is None else None
            item = self.forum.add(
                kind="post" if parent is None else "comment",
                author=agent.unique_id,
                step=int(self.steps),
                topic=topic,
                thread=0 if parent is None else parent.thread,
                text=own or template.text,
                stance=agent.stance,
                violation=template.violation if template else None,
                helpful=bool(template and template.helpful),
            )
            if parent is None:
                item.thread = item.id
            if own is not None:
                generated.add(item.id)
            created.append((item, dec, parent, misleading))
        self.guardian.judge([c[0] for c in created], generated)
        for item, dec, parent, misleading in created:
            self.tally["contributions"] += 1
            self.tally["violations"] += item.violation is not None
            self.tally["cooperative"] += item.violation is None and item.helpful
            self.annotate(
                dec,
                target=parent.author if parent is not None else None,
                violation=item.violation is not None,
                info={
                    "item": item.id,
                    "kind": item.kind,
                    "topic": item.topic,
                    "rule": item.violation,
                    "helpful": item.helpful,
                    "label_source": item.label_source,
                    "guardian_p": item.guardian_p,
                    "misleading": misleading,
                },
            )

    # ------------------------------------------------------------ social learning
    def learning_peers(self, agent: Member, agents: Sequence[Member]) -> list[Member]:  # type: ignore[override]
        """Members learn from their graph neighbours (followers and followees) only."""
        if self._peer_index[0] is not agents:  # one lookup table per phase, not per member (O(n^2))
            self._peer_index = (agents, {a.unique_id: a for a in agents})
        present = self._peer_index[1]
        near = set(self.graph.successors(agent.unique_id)) | set(self.graph.predecessors(agent.unique_id))
        return [present[i] for i in sorted(near) if i in present]

    def learning_info(self, agent: Member) -> dict[str, Any]:  # type: ignore[override]
        return {"rule": agent.strategy.rule, "style": agent.style}


def _describe(action: Action, item: Item | None) -> str:
    """An action in words that stay meaningful after the feed changes (no slot numbers)."""
    if item is None:
        return action.label
    by = "the forum" if item.author is None else f"@{item.author}"
    verb = {"comment": "comment on"}.get(action.type, action.type)
    return f"{verb} a {item.kind} by {by} about {item.topic.replace('_', ' ')}"


_COUNTS = (
    "active",
    "contributions",
    "violations",
    "cooperative",
    "reports",
    "queued",
    "reviewed",
    "warning",
    "removal",
    "temp_ban",
    "perm_ban",
)
