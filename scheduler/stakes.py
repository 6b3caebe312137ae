"""Points at stake per unit: how nudges are ordered.

A unit's points at stake are the points still open on the score items it is
responsible for: for each item, what it can still reach (``reachable_points``)
minus what is already verified (``item_score`` of the verified criteria). An
item shared by several units counts fully for each of them: each can still
lose it.
"""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import Session, select

from models.seed import item_score, reachable_points
from models.tables import (
    Assessment,
    AssessmentState,
    Criterion,
    ItemUnit,
    ScoreItem,
    Unit,
)


def points_at_stake_by_unit(session: Session, campaign_id: int) -> dict[int, float]:
    """unit id -> points still open on the score items the unit is responsible for."""
    items = list(session.exec(select(ScoreItem).where(ScoreItem.campaign_id == campaign_id)))
    if not items:
        return {}
    criteria: dict[int, list[Criterion]] = defaultdict(list)
    for c in session.exec(select(Criterion).where(Criterion.campaign_id == campaign_id)):
        criteria[c.item_id].append(c)
    verified = {
        a.criterion_id
        for a in session.exec(
            select(Assessment).where(
                Assessment.campaign_id == campaign_id,
                Assessment.state == AssessmentState.verified,
            )
        )
    }
    owners: dict[int, set[int]] = defaultdict(set)
    item_ids = [i.id for i in items]
    for link in session.exec(select(ItemUnit).where(ItemUnit.item_id.in_(item_ids))):  # type: ignore[union-attr]
        owners[link.item_id].add(link.unit_id)
    member_units = {
        u.id
        for u in session.exec(select(Unit).where(Unit.campaign_id == campaign_id, Unit.is_member))
    }
    stakes: dict[int, float] = defaultdict(float)
    for item in items:
        crits = criteria.get(item.id or 0, [])
        reachable = reachable_points(item, crits) if crits else item.max_points
        earned = item_score(max_points=item.max_points, met=[c for c in crits if c.id in verified])
        open_points = max(0.0, reachable - earned)
        units = set(owners.get(item.id or 0, set()))
        if item.all_members:
            units |= member_units  # type: ignore[arg-type]
        for unit_id in units:
            stakes[unit_id] += open_points
    return dict(stakes)
