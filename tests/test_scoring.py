"""The scoring rule and its quantities, by hand, on the official table, and by property."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import seed as seed_module
from models.scoring import (
    ZERO,
    CriterionInput,
    Score,
    attainable_points,
    criterion_lost,
    criterion_scores,
    format_points,
    score_item,
    total,
)
from models.seed import SeedDoc, load_seed
from models.tables import AssessmentState as S
from tests.conftest import SEED_PATH

V, C, R, N = S.verified, S.claimed, S.rejected, S.none


def crit(points: float, state: S = N, tier: str | None = None, na: bool = False) -> CriterionInput:
    return CriterionInput(points=points, tier_group=tier, state=state, not_attainable=na)


def chain(s: Score) -> None:
    assert s.verified <= s.claimed <= s.reachable <= s.possible <= s.attainable <= s.max_points
    for x in (s.pending, s.open, s.lost, s.lost_late, s.lost_not_attainable, s.at_stake):
        assert x >= 0
    assert s.verified + s.pending + s.open + s.lost == s.attainable
    assert s.at_stake == s.open + s.lost_late


# ----------------------------------------------------------------- by hand


def test_attainable_points_of_the_inconsistent_items() -> None:
    # Item 19: 4 points, criteria 1 + 1.
    assert attainable_points(4, [crit(1), crit(1)]) == 2
    # Item 25: 1 + 1 + 2 against 3; item 28: 3 + 2 against 3.
    assert attainable_points(3, [crit(1), crit(1), crit(2)]) == 3
    assert attainable_points(3, [crit(3), crit(2)]) == 3
    # Items 8 and 12: 2 + (国家级 2 | 省级 1), "满分4分".
    assert attainable_points(4, [crit(2), crit(2, tier="t"), crit(1, tier="t")]) == 4
    assert attainable_points(5, []) == 0


def test_one_rule_shared_with_the_seed_checker() -> None:
    crits = [crit(2), crit(2, tier="t"), crit(1, tier="t"), crit(0.5)]
    assert attainable_points(4, crits) == seed_module.item_score(max_points=4, met=crits) == 4
    assert seed_module.criteria_points(crits) == 4.5


def test_item_score_states() -> None:
    item = [crit(1, V), crit(2, C), crit(1, R), crit(1, N)]
    s = score_item(5, item)
    assert (s.verified, s.claimed, s.reachable, s.attainable, s.max_points) == (1, 3, 5, 5, 5)
    assert (s.pending, s.open, s.lost) == (2, 2, 0)
    chain(s)


def test_overdue_loses_what_is_neither_claimed_nor_verified() -> None:
    item = [crit(1, V), crit(2, C), crit(1, R), crit(1, N)]
    s = score_item(5, item, overdue=True)
    assert (s.verified, s.claimed, s.reachable, s.possible) == (1, 3, 3, 5)
    assert (s.open, s.lost, s.lost_late, s.at_stake) == (0, 2, 2, 2)
    assert [criterion_lost(c, overdue=True) for c in item] == [False, False, True, True]
    assert [criterion_lost(c, overdue=False) for c in item] == [False] * 4
    chain(s)


def test_not_attainable_is_lost_and_never_scores() -> None:
    # Item 10: 2 + 1 + 1, the last two need a statutory metrology institution.
    item = [crit(2), crit(1, na=True), crit(1, na=True)]
    s = score_item(4, item)
    assert (s.attainable, s.possible, s.reachable, s.lost_not_attainable, s.lost) == (4, 2, 2, 2, 2)
    # Even a (stale) verified assessment on a not-attainable criterion counts nothing.
    s = score_item(4, [crit(2), crit(1, V, na=True)])
    assert (s.verified, s.claimed) == (0, 0)
    assert criterion_scores(crit(1, V, na=True)) == (0, 0)
    assert criterion_scores(crit(1.5, V)) == (1.5, 1.5)
    assert criterion_scores(crit(1.5, C)) == (1.5, 0)
    assert criterion_scores(crit(1.5, R)) == (0, 0)


def test_cap_makes_a_lost_criterion_cost_only_what_the_cap_no_longer_covers() -> None:
    # Item 25 (1 + 1 + 2, capped at 3): losing the 2-point criterion costs only 1.
    s = score_item(3, [crit(1, V), crit(1, V), crit(2, N)], overdue=True)
    assert (s.verified, s.reachable, s.lost) == (2, 2, 1)
    s = score_item(3, [crit(1, N), crit(1, V), crit(2, V)], overdue=True)
    assert (s.verified, s.reachable, s.lost) == (3, 3, 0)


def test_tiers_count_the_highest_met_only() -> None:
    s = score_item(4, [crit(2, V), crit(2, C, tier="t"), crit(1, V, tier="t")])
    assert (s.verified, s.claimed) == (3, 4)


def test_total_sums_then_caps() -> None:
    a = score_item(3, [crit(3, V)])
    b = score_item(3, [crit(2, C), crit(1)])
    t = total([a, b])
    assert (t.max_points, t.verified, t.claimed, t.attainable) == (6, 3, 5, 6)
    capped = total([a, b], max_points=4)
    assert (capped.max_points, capped.verified, capped.claimed, capped.attainable) == (4, 3, 4, 4)
    assert total([], max_points=10) == Score(10, 0, 0, 0, 0, 0)
    assert total([]) == ZERO
    assert total([a, b], cap=2).claimed == 2
    chain(capped)


@pytest.mark.parametrize(("x", "text"), [(1.5, "1.5"), (2.0, "2"), (100, "100"), (0.5, "0.5"),
                                         (0.0, "0"), (-0.0, "0"), (22, "22"), (97.5, "97.5")])
def test_format_points(x: float, text: str) -> None:
    assert format_points(x) == text


# ------------------------------------------------------- the official table


@pytest.fixture(scope="module")
def doc() -> SeedDoc:
    return load_seed(SEED_PATH)


def _table(doc: SeedDoc, states: dict[tuple[int, int], S] | None = None) -> dict[str, Score]:
    """Category name -> total, with everything in state ``none`` unless given."""
    states = states or {}
    by_cat: dict[str, list[Score]] = {}
    for it in doc.score_items:
        inputs = [CriterionInput(c.points, c.tier_group, states.get((it.no, c.no), N),
                                 c.not_attainable) for c in it.criteria]
        by_cat.setdefault(it.category, []).append(score_item(it.max_points, inputs))
    return {c.name: total(by_cat[c.name], max_points=c.stated_points) for c in doc.score_categories}


def test_the_seed_table_comes_out_as_the_document_states(doc: SeedDoc) -> None:
    cats = _table(doc)
    attainable = {name: s.attainable for name, s in cats.items()}
    assert attainable == {"质量发展促进机制": 22, "质量技术": 18, "质量工作成效": 44,
                          "质量安全水平": 16, "加分项": 8}
    base = [c for c in doc.score_categories if not c.is_bonus]
    assert sum(attainable[c.name] for c in base) == 100
    assert sum(it.max_points for it in doc.score_items
               if it.category in {c.name for c in base}) == 102
    assert cats["加分项"].max_points == 10  # stated 10, attainable 8
    by_no = {it.no: it for it in doc.score_items}
    assert attainable_points(by_no[19].max_points, by_no[19].criteria) == 2
    assert attainable_points(by_no[25].max_points, by_no[25].criteria) == 3
    assert attainable_points(by_no[28].max_points, by_no[28].criteria) == 3
    # Item 10: two criteria are not attainable here; 2 points lost from the start.
    it10 = by_no[10]
    s = score_item(it10.max_points, [CriterionInput(c.points, c.tier_group, N, c.not_attainable)
                                     for c in it10.criteria])
    assert (s.attainable, s.possible, s.lost_not_attainable) == (4, 2, 2)


def test_everything_verified_gives_98_plus_8(doc: SeedDoc) -> None:
    states = {(it.no, c.no): V for it in doc.score_items for c in it.criteria}
    cats = _table(doc, states)
    assert sum(s.verified for name, s in cats.items() if name != "加分项") == 98  # item 10: −2
    assert cats["加分项"].verified == 8


# ------------------------------------------------------------ properties

points = st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
states = st.sampled_from(list(S))
criteria = st.lists(
    st.builds(CriterionInput, points=points,
              tier_group=st.one_of(st.none(), st.sampled_from(["a", "b"])),
              state=states, not_attainable=st.booleans()),
    max_size=7,
)
max_points = st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0])


@given(max_points, criteria, st.booleans())
def test_score_never_exceeds_the_items_maximum_and_the_chain_holds(
    mx: float, crits: list[CriterionInput], overdue: bool
) -> None:
    s = score_item(mx, crits, overdue=overdue)
    chain(s)
    assert s.attainable == attainable_points(mx, crits)
    assert s.attainable <= sum(c.points for c in crits)


@given(max_points, criteria, st.data())
def test_verifying_more_never_lowers_the_score(
    mx: float, crits: list[CriterionInput], data: st.DataObject
) -> None:
    if not crits:
        return
    i = data.draw(st.integers(0, len(crits) - 1))
    overdue = data.draw(st.booleans())
    before = score_item(mx, crits, overdue=overdue)
    more = list(crits)
    more[i] = CriterionInput(crits[i].points, crits[i].tier_group, V, crits[i].not_attainable)
    after = score_item(mx, more, overdue=overdue)
    assert after.verified >= before.verified
    assert after.claimed >= before.claimed
    assert after.reachable >= before.reachable
    # Claiming is monotone too (from none or rejected).
    if crits[i].state in (N, R):
        claimed = list(crits)
        claimed[i] = CriterionInput(crits[i].points, crits[i].tier_group, C,
                                    crits[i].not_attainable)
        s = score_item(mx, claimed, overdue=overdue)
        assert s.claimed >= before.claimed and s.verified == before.verified


@given(st.lists(points, min_size=1, max_size=6), st.lists(states, min_size=6, max_size=6))
def test_tiered_criteria_never_double_count(pts: list[float], sts: Sequence[S]) -> None:
    crits = [CriterionInput(p, "only", s) for p, s in zip(pts, sts, strict=False)]
    s = score_item(100, crits)
    assert s.attainable == max(pts)
    assert s.verified == max((c.points for c in crits if c.state == V), default=0)
    assert s.claimed == max((c.points for c in crits if c.state in (C, V)), default=0)


@settings(max_examples=60)
@given(st.lists(st.tuples(max_points, criteria, st.booleans()), max_size=12),
       st.sampled_from([None, 5.0, 10.0, 100.0]))
def test_totals_never_exceed_the_tables_maximum(
    items: list[tuple[float, list[CriterionInput], bool]], cap: float | None
) -> None:
    scores = [score_item(mx, cr, overdue=o) for mx, cr, o in items]
    t = total(scores, max_points=cap)
    chain(t)
    if cap is not None:
        assert t.max_points == cap and t.claimed <= cap
    else:
        assert t.max_points == sum(s.max_points for s in scores)
    assert t.verified <= sum(s.verified for s in scores)
