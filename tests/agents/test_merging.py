"""Which concurrent batches a host merges (agents/merging.py)."""

from agents.llm.types import ScoreItem
from agents.merging import plan_merges

SYSTEM = "You are one of 5 fishers sharing a lake."


def batch(record: str, agents: range, system: str = SYSTEM, options: tuple[str, ...] = ("0 tons", "5 tons")):
    return [
        ScoreItem(system, f"What everyone saw:\n{record}\n\nYou are fisher {a}. How many tons?", "I catch ", options)
        for a in agents
    ]


def test_batches_sharing_their_prefix_merge_and_batches_with_their_own_record_do_not():
    record_a = "- Month 1: fishers caught 1: 10.0, 2: 10.0, 3: 5.0, 4: 5.0, 5: 20.0; 50 tons were left." * 3
    record_b = "- Month 1: fishers caught 1: 7.5, 2: 10.0, 3: 5.0, 4: 5.0, 5: 20.0; 52 tons were left." * 3
    same_sim_halves = [batch(record_a, range(1, 3)), batch(record_a, range(3, 6))]
    assert plan_merges(same_sim_halves) == [[0, 1]]
    two_sims = [batch(record_a, range(1, 6)), batch(record_b, range(1, 6)), batch(record_a, range(1, 6))]
    assert plan_merges(two_sims) == [[0, 2], [1]]  # the third joins the first, past the second
    assert plan_merges(two_sims, keep=0.0) == [[0, 1, 2]]  # keep=0: merge whatever has the same shape


def test_only_batches_of_one_shape_merge():
    record = "- Month 1: 50 tons were left."
    other_system = batch(record, range(1, 3), system="You are one of 9 fishers.")
    other_options = batch(record, range(1, 3), options=("yes", "no", "maybe"))
    assert plan_merges([batch(record, range(1, 3)), other_system, other_options]) == [[0], [1], [2]]


def test_a_single_decision_merges_only_with_its_own_text():
    one = batch("- Month 1: 50 tons were left.", range(1, 2))
    assert plan_merges([one, one]) == [[0, 1]]
    assert plan_merges([one, batch("- Month 1: 40 tons were left.", range(1, 2))]) == [[0], [1]]
