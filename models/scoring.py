"""The score: "if the inspectors came today, how many points would we get?"

Pure functions on plain values; no database. :mod:`models.status` feeds them the
rows of a campaign, the bot and the scheduler only display what comes out.

The rule (one rule, used everywhere)
------------------------------------
An item earns the points of its *met* sub-criteria, capped at the item's points
(``max_points``). Criteria sharing a ``tier_group`` are alternatives (国家级 +2 /
省级 +1): only the highest met one counts. :func:`item_score` is that rule and
:func:`attainable_points` is the rule with every criterion met
(:func:`reachable_points`: every criterion not marked ``not_attainable``). The seed
checker (:mod:`models.seed.check`) uses the same functions to report the table's
inconsistencies, so there is exactly one implementation.

How the official table's inconsistencies come out of that rule
--------------------------------------------------------------
``attainable_points(max_points, criteria) = min(max_points, best-case criteria sum)``.

* Item 19 states 4 points but its criteria give 1 + 1: attainable **2**. The
  document does not say how the other 2 points are earned; nobody can claim them.
* Item 25 (criteria 1 + 1 + 2 against 3 points) and item 28 (3 + 2 against 3) are
  capped at their stated points: attainable **3** each. Meeting a subset is enough
  to reach the cap; losing a criterion only costs what the cap no longer covers.
* Items 8 and 12 have alternatives (tier groups): 2 + max(2, 1) = 4.
* So the base items' points add up to 102 but their attainable total is exactly
  **100**, and 质量工作成效 is **44** as the document states; 质量技术, for which the
  extracted text states no total, is 18 = 100 − 22 − 44 − 16.
* The bonus category (加分项) states 10 but its items can reach only 3 + 3 + 2 =
  **8**. Bonus points are always counted apart from the 100 base points.
* Caps are applied at every level: an item at its ``max_points``, a category at
  the total the document states for it (when it states one), the base at the
  campaign's stated base (100) and the bonus at its stated bonus (10).

The quantities of a :class:`Score`
----------------------------------
Each criterion is in one assessment state: ``none``, ``claimed`` (a unit says it
is met), ``verified`` (the coordinator accepted it) or ``rejected``; and it may be
marked ``not_attainable`` (e.g. item 10: "区域无法定计量检定机构"). A criterion is
*lost* when it is not attainable, or when the item's deadline has passed and it
is neither claimed nor verified (a late claim brings it back: it is then claimed).
A not-attainable criterion never scores, whatever its assessment says.

* ``verified`` — :func:`item_score` of the verified criteria (核定);
* ``claimed`` — of the verified and claimed ones (自评: what we would get if every
  claim now pending were accepted — the projected score);
* ``reachable`` — of every criterion not lost: the best still possible;
* ``possible`` — of every criterion not marked not attainable;
* ``attainable`` — of all criteria: what the table allows;
* ``max_points`` — what the document states.

always ``verified ≤ claimed ≤ reachable ≤ possible ≤ attainable ≤ max_points``, and

* ``pending = claimed − verified`` (awaiting review),
* ``open = reachable − claimed`` (still to be earned before the deadline),
* ``lost = attainable − reachable``, split into ``lost_not_attainable =
  attainable − possible`` and ``lost_late = possible − reachable``,
* ``at_stake = possible − claimed = open + lost_late`` (what work could still win).

Totals (category, base, bonus) sum each quantity over their items and then cap
it, so the same chain holds for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from models.tables import AssessmentState

__all__ = [
    "CriterionInput",
    "CriterionLike",
    "Score",
    "ZERO",
    "attainable_points",
    "criteria_points",
    "criterion_lost",
    "criterion_scores",
    "format_points",
    "item_score",
    "reachable_points",
    "score_item",
    "total",
]

#: Assessment states in which a criterion counts for the self-assessment.
CLAIMED_STATES = frozenset({AssessmentState.claimed, AssessmentState.verified})


class CriterionLike(Protocol):
    @property
    def points(self) -> float: ...
    @property
    def tier_group(self) -> str | None: ...


class NotAttainableLike(CriterionLike, Protocol):
    @property
    def not_attainable(self) -> bool: ...


def criteria_points(criteria: Iterable[CriterionLike]) -> float:
    """The points ``criteria`` are worth together, before the item's cap.

    Criteria without a tier group add up; among criteria sharing a ``tier_group``
    (alternatives such as 国家级 +2 / 省级 +1) only the highest counts.
    """
    total = 0.0
    best: dict[str, float] = {}
    for c in criteria:
        if c.tier_group is None:
            total += c.points
        else:
            best[c.tier_group] = max(best.get(c.tier_group, 0.0), c.points)
    return total + sum(best.values())


def item_score(*, max_points: float, met: Iterable[CriterionLike]) -> float:
    """THE scoring rule: an item earns its met criteria's points, capped at its max_points."""
    return min(max_points, criteria_points(met))


def attainable_points(max_points: float, criteria: Iterable[CriterionLike]) -> float:
    """The most an item can earn by the table: ``min(max_points, best-case criteria sum)``.

    The best case counts every criterion once, and of each ``tier_group`` only the
    highest. See the module docstring for what this makes of the official table.
    """
    return item_score(max_points=max_points, met=criteria)


def reachable_points(max_points: float, criteria: Iterable[NotAttainableLike]) -> float:
    """Like :func:`attainable_points`, without the criteria marked ``not_attainable``."""
    met = [c for c in criteria if not getattr(c, "not_attainable", False)]
    return item_score(max_points=max_points, met=met)


@dataclass(frozen=True, slots=True)
class CriterionInput:
    """A sub-criterion as scoring sees it."""

    points: float
    tier_group: str | None = None
    state: AssessmentState = AssessmentState.none
    not_attainable: bool = False


def criterion_lost(c: CriterionInput, *, overdue: bool) -> bool:
    """Whether the criterion's points are lost (see the module docstring)."""
    if c.not_attainable:
        return True
    return overdue and c.state not in CLAIMED_STATES


def _clean(x: float) -> float:
    # Halves add up exactly in binary floating point; this only turns -0.0 into 0.0.
    return x + 0.0


@dataclass(frozen=True, slots=True)
class Score:
    """Points of an item, a category or a table; see the module docstring."""

    max_points: float
    attainable: float
    possible: float
    reachable: float
    claimed: float
    verified: float

    @property
    def pending(self) -> float:
        return _clean(self.claimed - self.verified)

    @property
    def open(self) -> float:
        return _clean(self.reachable - self.claimed)

    @property
    def lost(self) -> float:
        return _clean(self.attainable - self.reachable)

    @property
    def lost_not_attainable(self) -> float:
        return _clean(self.attainable - self.possible)

    @property
    def lost_late(self) -> float:
        return _clean(self.possible - self.reachable)

    @property
    def at_stake(self) -> float:
        return _clean(self.possible - self.claimed)

    @property
    def projected(self) -> float:
        """The score if everything now claimed is verified."""
        return self.claimed


ZERO = Score(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def score_item(
    max_points: float, criteria: Sequence[CriterionInput], *, overdue: bool = False
) -> Score:
    """Score one item. ``overdue``: its deadline has passed (unmet criteria are lost)."""

    def s(chosen: Iterable[CriterionInput]) -> float:
        return float(item_score(max_points=max_points, met=chosen))

    attainable = s(criteria)
    possible = s(c for c in criteria if not c.not_attainable)
    reachable = s(c for c in criteria if not criterion_lost(c, overdue=overdue))
    claimed = s(c for c in criteria if not c.not_attainable and c.state in CLAIMED_STATES)
    verified = s(
        c for c in criteria if not c.not_attainable and c.state == AssessmentState.verified
    )
    return Score(float(max_points), attainable, possible, reachable, claimed, verified)


def criterion_scores(c: CriterionInput) -> tuple[float, float]:
    """(claimed, verified) points of one criterion on its own, before the item's cap."""
    if c.not_attainable:
        return 0.0, 0.0
    claimed = float(c.points) if c.state in CLAIMED_STATES else 0.0
    verified = float(c.points) if c.state == AssessmentState.verified else 0.0
    return claimed, verified


def total(
    scores: Iterable[Score], *, max_points: float | None = None, cap: float | None = None
) -> Score:
    """Sum scores, then cap every quantity at ``cap`` (default: no cap).

    ``max_points`` defaults to the sum of the parts' ``max_points`` (capped too).
    """
    parts = list(scores)

    def agg(name: str) -> float:
        value = float(sum(getattr(p, name) for p in parts))
        return min(value, float(cap)) if cap is not None else value

    mx = float(max_points) if max_points is not None else agg("max_points")
    return Score(
        max_points=mx,
        attainable=min(agg("attainable"), mx),
        possible=min(agg("possible"), mx),
        reachable=min(agg("reachable"), mx),
        claimed=min(agg("claimed"), mx),
        verified=min(agg("verified"), mx),
    )


def format_points(x: float) -> str:
    """Points as people write them: ``1.5``, ``2`` (never ``2.0``), ``100``."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
