"""The bot's pure parts: permission table, input parsing, button payloads, command list."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.callbacks import VERBS, Button, button, parse
from bot.commands import COMMANDS, Scope, commands_for, help_text, menu
from bot.parsing import (
    Claim,
    Done,
    Note,
    Progress,
    is_claim,
    parse_claim,
    parse_criterion_ref,
    parse_date,
    parse_percent,
    parse_report,
    parse_task_no,
)
from models.errors import InvalidInput, PermissionDenied
from models.permissions import (
    PERMISSIONS,
    RESPONSIBLE_UNIT_REQUIRED,
    Action,
    Standing,
    check,
    refusal_message,
    standing_of,
)
from models.tables import Member, Role

# ------------------------------------------------------------------ permissions


def test_every_action_has_a_rule_and_a_flag():
    assert set(PERMISSIONS) == set(Action)
    assert set(RESPONSIBLE_UNIT_REQUIRED) == set(Action)


def test_liaison_roles_agree_where_no_unit_is_involved():
    for action, roles in PERMISSIONS.items():
        if not RESPONSIBLE_UNIT_REQUIRED[action]:
            assert (Standing.liaison_responsible in roles) == (Standing.liaison_other in roles), action


#: A unit's answer to a 批示 or 督办单 is the unit's own: the coordinator does not answer for it.
UNIT_ONLY = {Action.answer_instruction, Action.answer_supervision}


def test_unit_work_is_for_the_responsible_liaison_and_coordinator_only():
    for action, needed in RESPONSIBLE_UNIT_REQUIRED.items():
        if needed and action in UNIT_ONLY:
            assert PERMISSIONS[action] == {Standing.liaison_responsible}, action
        elif needed:
            assert PERMISSIONS[action] == {Standing.liaison_responsible, Standing.coordinator}, action


#: The only writes a leader makes: a 批示, and closing one (issue 15).
LEADER_WRITES = {Action.instruct, Action.close_instruction}


def test_leaders_and_removed_members_never_write():
    writes = {a for a in Action if a not in {Action.help, Action.whoami, Action.redeem_invite,
                                             Action.view_status, Action.view_unit, Action.view_task,
                                             Action.view_item, Action.export, Action.my_tasks}}
    for action in writes:
        assert (Standing.leader in PERMISSIONS[action]) == (action in LEADER_WRITES), action
        assert Standing.removed not in PERMISSIONS[action], action
        assert Standing.stranger not in PERMISSIONS[action], action


def _member(role: Role, unit_id: int | None = None, active: bool = True) -> Member:
    return Member(campaign_id=1, telegram_user_id=7, role=role, unit_id=unit_id, active=active)


@pytest.mark.parametrize(
    ("member", "units", "expected"),
    [
        (None, [1], Standing.stranger),
        (_member(Role.liaison, 1, active=False), [1], Standing.removed),
        (_member(Role.liaison, 1), [1, 2], Standing.liaison_responsible),
        (_member(Role.liaison, 3), [1, 2], Standing.liaison_other),
        (_member(Role.leader), [1], Standing.leader),
        (_member(Role.coordinator), [1], Standing.coordinator),
    ],
)
def test_standing_of(member, units, expected):
    assert standing_of(member, units) == expected


def test_check_matrix_matches_the_table():
    cases = {
        Standing.stranger: None,
        Standing.removed: _member(Role.liaison, 1, active=False),
        Standing.liaison_responsible: _member(Role.liaison, 1),
        Standing.liaison_other: _member(Role.liaison, 2),
        Standing.leader: _member(Role.leader),
        Standing.coordinator: _member(Role.coordinator),
    }
    for action in Action:
        for role, member in cases.items():
            units = [1] if RESPONSIBLE_UNIT_REQUIRED[action] else None
            if role == Standing.liaison_other and not RESPONSIBLE_UNIT_REQUIRED[action]:
                continue  # without a unit in question, every liaison is "responsible"
            if role in PERMISSIONS[action]:
                assert check(member=member, action=action, responsible_unit_ids=units) == role
            else:
                with pytest.raises(PermissionDenied) as err:
                    check(member=member, action=action, responsible_unit_ids=units)
                assert err.value.message == refusal_message(role, action)
                assert any("\u4e00" <= ch <= "\u9fff" for ch in err.value.message)


def test_unit_scoped_check_needs_the_units():
    with pytest.raises(ValueError):
        check(member=_member(Role.coordinator), action=Action.submit)


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("完成", Done()),
        ("已完成", Done()),
        ("已完成！", Done()),
        ("进度 60%", Progress(60)),
        ("60%", Progress(60)),
        ("６０％", Progress(60)),
        ("进度：６０％", Progress(60)),
        ("进度60", Progress(60)),
        ("60", Progress(60)),
        ("100%", Progress(100)),
        ("0%", Progress(0)),
        ("60% 已完成初稿", Progress(60, "已完成初稿")),
        ("进度 60%，下周提交", Progress(60, "下周提交")),
        ("正在起草，下周上会", Note("正在起草，下周上会")),
        ("3号前完成", Note("3号前完成")),
        ("进度顺利", Note("进度顺利")),
    ],
)
def test_parse_report(text, expected):
    assert parse_report(text) == expected


@pytest.mark.parametrize("text", ["进度 150%", "进度 -5%", "101%", "进度 abc", "60.5%", "进度 ６０.５％"])
def test_parse_report_refuses_bad_percentages(text):
    with pytest.raises(InvalidInput):
        parse_report(text)


def test_overlong_note_is_refused():
    with pytest.raises(InvalidInput, match="太长"):
        parse_report("说明" * 400)


@given(st.integers(min_value=0, max_value=100), st.sampled_from(["", "%", "％"]),
       st.booleans(), st.booleans())
def test_any_valid_percentage_parses(n, sign, prefix, fullwidth):
    digits = str(n)
    if fullwidth:
        digits = "".join(chr(ord(c) + 0xFEE0) for c in digits)
    text = ("进度 " if prefix else "") + digits + sign
    assert parse_report(text) == Progress(n)


@given(st.integers().filter(lambda n: n < 0 or n > 100))
def test_out_of_range_percentages_are_refused(n):
    with pytest.raises(InvalidInput):
        parse_percent(f"{n}%")


@given(st.text(max_size=200))
def test_parse_report_never_crashes(text):
    try:
        parse_report(text)
    except InvalidInput as err:
        assert err.message


def test_small_parsers():
    assert parse_task_no("任务7", usage="") == 7
    assert parse_task_no("#12", usage="") == 12
    with pytest.raises(InvalidInput):
        parse_task_no("七", usage="")
    assert parse_criterion_ref("8.1", usage="") == (8, 1)
    assert parse_criterion_ref("８．１", usage="") == (8, 1)
    assert parse_criterion_ref("8-2", usage="") == (8, 2)
    with pytest.raises(InvalidInput):
        parse_criterion_ref("8", usage="")
    assert parse_date("2022-01-31", usage="").isoformat() == "2022-01-31"
    assert parse_date("2022年1月31日", usage="").isoformat() == "2022-01-31"
    with pytest.raises(InvalidInput):
        parse_date("2022-02-30", usage="")
    assert is_claim("达标") and is_claim("已完成。") and not is_claim("还差一点")


# ------------------------------------------------------------------ buttons


def test_button_round_trip():
    for kind, verbs in VERBS.items():
        for verb, needs_version in verbs.items():
            data = button(kind, verb, 123, 4 if needs_version else None)
            assert len(data.encode()) <= 64
            assert parse(data) == Button(kind, verb, 123, 4 if needs_version else None)


@pytest.mark.parametrize(
    "data", ["", "a:ok:1", "a:ok:x:v1", "z:ok:1:v1", "a:drop:1:v1", "a:open:1:v2", "a:ok:1:v1:extra",
             "a:ok:-1:v1", "' or 1=1", "a:ok:1:v99999999999"],
)
def test_forged_payloads_are_refused(data):
    with pytest.raises(InvalidInput, match="按钮无效"):
        parse(data)


@given(st.text(max_size=80))
def test_parse_never_crashes(data):
    try:
        parse(data)
    except InvalidInput:
        pass


# ------------------------------------------------------------------ the one command list


def test_command_list_is_consistent():
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    for c in COMMANDS:
        assert c.name.islower() and 1 <= len(c.name) <= 32
        assert 1 <= len(c.description) <= 256
        assert c.callback.__doc__, c.name
        assert any("\u4e00" <= ch <= "\u9fff" for ch in c.description)


def test_menus_and_help_follow_the_permission_table():
    for role in Standing:
        for scope in Scope:
            listed = {b.command for b in menu(role, scope)}
            allowed = {c.name for c in commands_for(role, scope)}
            assert listed == allowed
            text = help_text(role, private=scope == Scope.private)
            for name in allowed:
                assert f"/{name}" in text
    coordinator_private = {b.command for b in menu(Standing.coordinator, Scope.private)}
    assert {"review", "invite", "members", "status"} <= coordinator_private
    assert "review" not in {b.command for b in menu(Standing.leader, Scope.private)}
    assert "bindgroup" in {b.command for b in menu(Standing.coordinator, Scope.group)}


# ------------------------------------------------------------------ how officials write (issue 17)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("已完成80%", Progress(80)),
        ("完成80%", Progress(80)),
        ("完成了 80 %", Progress(80)),
        ("８０％", Progress(80)),
        ("进度：80%", Progress(80)),
        ("80％", Progress(80)),
        ("已完成８０％，剩余部分下周提交", Progress(80, "剩余部分下周提交")),
        ("已经完成约80%", Progress(80)),
        ("100%", Progress(100)),
        ("已完成100%", Progress(100)),
        ("完成", Done()),
        ("已完成", Done()),
        ("完成3项整改", Note("完成3项整改")),  # no percent sign: a note, not 3%
        ("完成初稿", Note("完成初稿")),
    ],
)
def test_parse_report_reads_how_officials_write(text, expected):
    assert parse_report(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("达标", Claim()),
        ("已达标。", Claim()),
        ("符合", Claim()),
        ("达标，区质量发展委员会已于11月成立", Claim("区质量发展委员会已于11月成立")),
        ("达标。区质量发展委员会已于11月成立", Claim("区质量发展委员会已于11月成立")),
        ("已达标 区质量发展委员会已于11月成立", Claim("区质量发展委员会已于11月成立")),
        ("符合 文件已印发", Claim("文件已印发")),
        ("达到要求", None),  # the word runs into what follows: not a claim
        ("还差一点", None),
    ],
)
def test_parse_claim(text, expected):
    assert parse_claim(text) == expected


def test_a_date_without_its_year_is_the_next_one() -> None:
    from datetime import date

    from bot.parsing import parse_date
    from models.errors import InvalidInput

    today = date(2021, 11, 1)
    assert parse_date("11月15日", usage="", today=today) == date(2021, 11, 15)
    assert parse_date("1月31日", usage="", today=today) == date(2022, 1, 31)
    assert parse_date("２０２２年１月３１日", usage="") == date(2022, 1, 31)
    for bad in ("11月15日", "2月30日"):
        try:
            parse_date(bad, usage="", today=None if bad == "11月15日" else today)
        except InvalidInput:
            continue
        raise AssertionError(bad)
