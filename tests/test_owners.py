"""Who owes a criterion: one rule (models.owners) for permissions, claims, /mytasks and /status."""

from __future__ import annotations

from models.owners import owing_unit_ids


def test_a_criterion_with_its_own_units_is_owed_by_them_only() -> None:
    assert owing_unit_ids(criterion_units=[7, 7, 3], item_units=[1, 2], all_members=True,
                          member_units=[4, 5]) == [7, 3]


def test_an_all_members_item_keeps_its_named_units_and_adds_every_member_unit_once() -> None:
    # Before, the bot dropped the named non-member unit 9 while the claim rule kept it.
    assert owing_unit_ids(item_units=[9, 4], all_members=True, member_units=[4, 5]) == [9, 4, 5]


def test_an_item_for_named_units_only() -> None:
    assert owing_unit_ids(item_units=[2, 1], all_members=False, member_units=[4]) == [2, 1]
    assert owing_unit_ids(item_units=[], all_members=False, member_units=[4]) == []
