"""Who owes a criterion: one rule (models.owners) for permissions, claims, /mytasks and /status."""

from __future__ import annotations

from models.owners import acting_unit, owing_unit_ids


def test_a_criterion_with_its_own_units_is_owed_by_them_only() -> None:
    assert owing_unit_ids(criterion_units=[7, 7, 3], item_units=[1, 2], all_members=True,
                          member_units=[4, 5]) == [7, 3]


def test_an_all_members_item_keeps_its_named_units_and_adds_every_member_unit_once() -> None:
    # Before, the bot dropped the named non-member unit 9 while the claim rule kept it.
    assert owing_unit_ids(item_units=[9, 4], all_members=True, member_units=[4, 5]) == [9, 4, 5]


def test_an_item_for_named_units_only() -> None:
    assert owing_unit_ids(item_units=[2, 1], all_members=False, member_units=[4]) == [2, 1]
    assert owing_unit_ids(item_units=[], all_members=False, member_units=[4]) == []


def test_the_acting_unit_is_the_members_own_when_it_owes_the_thing() -> None:
    assert acting_unit([3, 5], member_unit_id=5, about_unit_id=3) == 5


def test_the_acting_unit_follows_the_message_answered_when_the_member_is_not_of_an_owing_unit() -> None:
    # A coordinator (no unit) sending a file in reply to 区住建局's card files it for 区住建局.
    assert acting_unit([3, 5], member_unit_id=None, about_unit_id=3) == 3
    # ... but a message about a unit that does not owe it is no hint.
    assert acting_unit([3, 5], member_unit_id=None, about_unit_id=9) is None


def test_the_acting_unit_is_the_only_owing_unit_else_none() -> None:
    assert acting_unit([4], member_unit_id=None) == 4
    assert acting_unit([4], member_unit_id=8) == 4
    assert acting_unit([3, 5], member_unit_id=8) is None
    assert acting_unit([], member_unit_id=8) is None
