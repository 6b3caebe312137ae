"""Points at stake per unit: how nudges are ordered.

The definition is :mod:`models.status`'s (``UnitSummary.points_at_stake``: the
points at stake on the score items a unit owes something on, a shared item
counting for each of its units), so a nudge ranks units exactly as /status does.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

from models.status import campaign_status


def points_at_stake_by_unit(session: Session, campaign_id: int, today: date) -> dict[int, float]:
    """unit id -> points at stake on the items it is responsible for."""
    status = campaign_status(session=session, campaign_id=campaign_id, today=today)
    return {u.unit_id: u.points_at_stake for u in status.units}
