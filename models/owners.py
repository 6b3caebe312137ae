"""Who owes what: the one rule for the units responsible for a score item and a criterion.

A criterion is owed by its own units (``CriterionUnit``) when it names any; otherwise by its
item's units (``ItemUnit``), and, when the item is for 领导小组全体成员单位 (``all_members``),
by every member unit too. Permissions, claims, /mytasks and /status all ask this module, so
they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from models.tables import Criterion, CriterionUnit, ItemUnit, ScoreItem, Unit


def owing_unit_ids(
    *,
    criterion_units: Iterable[int] = (),
    item_units: Iterable[int],
    all_members: bool,
    member_units: Iterable[int],
) -> list[int]:
    """The rule on ids already loaded: in order, each unit once."""
    own = list(dict.fromkeys(criterion_units))
    if own:
        return own
    units = list(item_units)
    if all_members:
        units += list(member_units)
    return list(dict.fromkeys(u for u in units if u is not None))


def member_unit_ids(session: Session, campaign_id: int) -> list[int]:
    """The campaign's 领导小组成员单位, by id."""
    return [u for u in session.exec(
        select(Unit.id).where(Unit.campaign_id == campaign_id, col(Unit.is_member).is_(True)))
        if u is not None]


def item_unit_ids(session: Session, item: ScoreItem) -> list[int]:
    """The units responsible for a score item."""
    return owing_unit_ids(
        item_units=session.exec(select(ItemUnit.unit_id).where(ItemUnit.item_id == item.id)),
        all_members=item.all_members,
        member_units=member_unit_ids(session, item.campaign_id) if item.all_members else (),
    )


def responsible_unit_ids(session: Session, criterion: Criterion, item: ScoreItem | None = None) -> list[int]:
    """The units that owe ``criterion`` (``item`` is its score item, loaded if not given)."""
    own = list(session.exec(select(CriterionUnit.unit_id)
                            .where(CriterionUnit.criterion_id == criterion.id)))
    if own:
        return owing_unit_ids(criterion_units=own, item_units=(), all_members=False, member_units=())
    item = item if item is not None else session.get(ScoreItem, criterion.item_id)
    return item_unit_ids(session, item) if item is not None else []


def acting_unit(owing: list[int], *, member_unit_id: int | None, about_unit_id: int | None = None) -> int | None:
    """The unit a person acts for on a thing owed by ``owing`` (a claim, a file, a card).

    Their own unit when it owes it; else the unit the message they answered was about, when
    that one owes it; else the only owing unit; else None (several units, none of them theirs:
    the caller asks which, or refuses).
    """
    if member_unit_id is not None and member_unit_id in owing:
        return member_unit_id
    if about_unit_id is not None and about_unit_id in owing:
        return about_unit_id
    return owing[0] if len(owing) == 1 else None
