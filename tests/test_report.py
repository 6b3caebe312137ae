"""Rendering: Chinese HTML for Telegram, ≤ 4096 per message, split between lines, escaped."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, SQLModel

from infra.db import make_engine
from models.status import (
    CampaignStatus,
    campaign_status,
    item_view,
    province_overview,
    task_view,
    unit_view,
)
from models.tables import AssignmentState, OutboxState
from models.wording import points as pts
from reports.text import (
    MAX_MESSAGE,
    Pre,
    category_table,
    day,
    left,
    nos,
    pad,
    paginate,
    render_item,
    render_overview,
    render_status,
    render_task,
    render_unit,
    tg_len,
    width,
)
from tests.dbutil import fresh_database_url
from tests.factories import CampaignBuilder, by_name, seeded_campaign

TODAY = date(2021, 9, 1)
EVIL = "<b>坏&amp;单位</b> & <script>"
ALLOWED_TAGS = {"b", "i", "u", "s", "code", "pre", "a"}


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:  # noqa: ANN001
        assert tag in ALLOWED_TAGS, f"unexpected tag <{tag}>"
        assert tag not in self.stack, f"nested <{tag}>"
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_message(msg: str) -> str:
    """Assert ``msg`` is valid Telegram HTML within the limit; return its text."""
    assert 0 < tg_len(msg) <= MAX_MESSAGE
    # Entities: only the ones Telegram knows, and none cut off.
    for ent in re.findall(r"&[^;\s]*;?", msg):
        assert ent in ("&amp;", "&lt;", "&gt;", "&quot;"), ent
    p = _Checker()
    p.feed(msg)
    p.close()
    assert p.stack == [], f"unclosed {p.stack}"
    return "".join(p.text)


def check_all(messages: list[str]) -> str:
    assert messages and all(isinstance(m, str) for m in messages)
    text = "\n".join(check_message(m) for m in messages)
    assert not re.search(r"\d\.0(?!\d)", text), "a number printed as N.0"
    return text


# --------------------------------------------------------------- small helpers


def test_number_and_date_formats() -> None:
    assert [pts(x) for x in (1.5, 2.0, 100.0, 0.5, 0)] == ["1.5", "2", "100", "0.5", "0"]
    assert day(date(2021, 12, 31), TODAY) == "12月31日"
    assert day(date(2022, 4, 1), TODAY) == "2022年4月1日"
    assert [left(x) for x in (3, 0, -2, None)] == ["剩3天", "今天截止", "逾期2天", "无截止日期"]
    assert nos([5, 1, 2, 3, 7, 8]) == "1–3、5、7–8"
    assert nos([]) == ""


def test_monospace_padding_counts_cjk_twice() -> None:
    assert width("质量ab") == 6
    assert pad("质量", 6) == "质量  " and pad("12", 4, right=True) == "  12"


# ------------------------------------------------------------------ pagination


def test_paginate_keeps_short_reports_whole() -> None:
    assert paginate(["<b>甲</b>", "乙"]) == ["<b>甲</b>\n乙"]
    assert paginate([]) == [""]


def test_paginate_splits_between_lines_and_reopens_pre() -> None:
    lines = [f"<b>第{i}行</b> " + "字" * 30 for i in range(400)]
    table = Pre(tuple(f"行{i:03d} " + "x" * 40 for i in range(300)))
    msgs = paginate([*lines, table, "结尾"])
    assert len(msgs) > 3
    for m in msgs:
        check_message(m)
    body = "\n".join(msgs)
    for line in lines:
        assert line in body
    assert body.count("<pre>") == body.count("</pre>") >= 2
    rows = [r for m in msgs for r in re.sub(r"</?pre>", "", m).split("\n") if r.startswith("行")]
    assert rows == list(table.lines)


def test_paginate_cuts_an_overlong_line_as_plain_text() -> None:
    line = "<b>" + html.escape("<&>" * 3000) + "</b>"
    msgs = paginate([line])
    assert len(msgs) >= 3
    text = "".join(check_message(m) for m in msgs)
    assert text == "<&>" * 3000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("甲乙丙ab<>&\" 🔴"), max_size=60), max_size=40),
       st.integers(min_value=80, max_value=400))
def test_paginate_property(texts: list[str], limit: int) -> None:
    lines = [f"<b>{html.escape(t, quote=False)}</b>" if i % 2 else html.escape(t, quote=False)
             for i, t in enumerate(texts)]
    msgs = paginate(lines, limit=limit)
    for m in msgs:
        assert tg_len(m) <= limit
        p = _Checker()
        p.feed(m)
        p.close()
        assert p.stack == []
    if all(tg_len(x) <= limit for x in lines):
        # Nothing lost, nothing reordered: the lines come back in order.
        joined = [x for m in msgs for x in m.split("\n")]
        assert [x for x in joined if x.strip()] == [x for x in lines if x.strip()]
    else:
        # A line longer than a message is cut between characters: its text is all there, in order.
        def text(s: str) -> str:
            return re.sub(r"\s", "", html.unescape(re.sub(r"<[^>]*>", "", s)))

        assert text("".join(msgs)) == text("".join(lines))


# ----------------------------------------------------------- the real campaign


@pytest.fixture(scope="module")
def _seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CampaignStatus, dict]]:
    """The real plan on 2021-09-01, imported once for this module's read-only tests."""
    with fresh_database_url(tmp_path_factory.mktemp("report")) as url:
        eng = make_engine(url)
        SQLModel.metadata.create_all(eng)
        try:
            with Session(eng, expire_on_commit=False) as s:
                cid = seeded_campaign(s)
                units = {name: u.id for name, u in by_name(s, cid).items()}
                s.commit()
                yield campaign_status(session=s, campaign_id=cid, today=TODAY), units
        finally:
            eng.dispose()


@pytest.fixture
def seeded(_seeded: tuple[CampaignStatus, dict]) -> CampaignStatus:
    return _seeded[0]


def test_render_status_of_the_seeded_campaign(seeded: CampaignStatus) -> None:
    msgs = render_status(seeded)
    text = check_all(msgs)
    assert "当前得分 已核定 0 / 自评 0 / 满分 100 ＋ 加分 0/10" in text
    # One meaning per number: what can still be won is the table's points less what is lost.
    m = re.search(r"最多还能得 (\S+) 分（评分表可得 (\S+) 分，已失分 (\S+) 分）", text)
    assert m is not None, text
    reachable, attainable, lost = (float(x) for x in m.groups())
    assert reachable == attainable - lost and attainable == 100
    assert "待核定 0 分" in text  # points, and not the word /review uses for a count
    assert "第二阶段“全面创建，实现总体达标”（至12月31日，剩121天）" in text
    assert "下一节点：12月31日" in text
    assert "🔴 任务1" in text and "区委办、区政府办、区发改委、区市场监管局" in text
    assert "🔴 评分项2" in text
    assert "1. 评分项14 产品质量 8分" in text
    assert "加分项未申报：评分项28–30（可得 8 分）" in text
    assert "无责任单位的细则：10.1" in text
    assert "投递失败" not in text
    table = re.search(r"<pre>(.*?)</pre>", "\n".join(msgs), re.S).group(1).split("\n")
    assert table[1].split() == ["质量发展促进机制", "0", "0", "22"]
    assert table[-1].split() == ["加分项", "0", "0", "10", "可得8"]
    # The table's columns line up on a phone (CJK counted double).
    assert {width(re.sub(r" 可得\S+$", "", r)) for r in table} == {31}


def test_render_status_with_scores_and_half_points(session: Session) -> None:
    b = CampaignBuilder(session)
    b.phases_2021()
    u = b.unit(EVIL)
    cat = b.category(1, "质量工作成效", stated_points=44)
    bonus = b.category(2, "加分项", stated_points=10, is_bonus=True)
    it = b.item(14, cat, max_points=8, criteria=[1, 2, 0.5, 1.5], units=[u])
    b.assess(it.criteria[2], "verified", u)
    b.assess(it.criteria[3], "claimed", u)
    bi = b.item(28, bonus, max_points=3, criteria=[3, 2], units=[u])
    b.assess(bi.criteria[1], "verified", u)
    t = b.task(1, units=[u], deadline=date(2021, 9, 3), title="任务<标题>&")
    b.state(t.assignments[0], AssignmentState.in_progress, percent=40)
    b.outbox(OutboxState.failed)
    session.commit()
    st_ = campaign_status(session=session, campaign_id=b.cid, today=TODAY)
    text = check_all(render_status(st_))
    assert "已核定 0.5 / 自评 2 / 满分 100 ＋ 加分 2/10" in text
    assert "若已申报的全部核定：基本分 2，加分 2" in text
    assert "🟡 任务1 任务<标题>&" in text  # escaped in the HTML, plain in the text
    assert EVIL in text
    assert "有 1 条消息投递失败" in text
    html_ = "\n".join(render_status(st_))
    assert "<script>" not in html_ and "&lt;script&gt;" in html_


def test_render_views(_seeded: tuple[CampaignStatus, dict]) -> None:
    st_, units = _seeded
    market = units["区市场监管局"]
    text = check_all(render_unit(unit_view(st_, market)))
    assert text.startswith("🏢 区市场监管局（截至 9月1日）")
    assert "任务 17 项" in text and "🔴 任务1" in text
    assert "14.3 抽检不合格食品核查处置率达到100%（0.5分）⬜ 未申报" in text
    text = check_all(render_item(item_view(st_, 10)))
    assert "评分项 10 · 计量工作（质量技术）" in text
    assert "满分 4 · 可得 4 · 已核定 0 · 自评 0 · 已失分 2" in text
    assert "🚫 本区无法达到：区域无法定计量检定机构。" in text
    assert "责任单位：（无责任单位）" in text
    text = check_all(render_item(item_view(st_, 19)))
    assert "注：细则合计最多 2 分，低于本项分数 4 分。" in text
    assert "责任单位：领导小组全体成员单位" in text
    text = check_all(render_task(task_view(st_, 1)))
    assert text.startswith("任务 1 成立党政主要领导双牵头的质量发展委员会")
    assert "🔴 区委办 · 未开始（逾期） · 7月10日截止，逾期53天" in text
    assert "已通过 0/4" in text


def test_render_task_shows_notes_and_return_reasons(session: Session) -> None:
    b = CampaignBuilder(session)
    u1, u2 = b.units("甲局", "乙局")
    t = b.task(1, units=[u1, u2], deadline=date(2021, 8, 31))
    t.task.deadline = date(2021, 8, 31)
    t.task.planned_deadline = date(2021, 7, 31)
    a1, a2 = t.assignments
    a1.note, a1.return_reason = "进展<说明>" * 30, "缺少&附件"
    b.state(a1, AssignmentState.in_progress, percent=80)
    b.state(a2, AssignmentState.submitted)
    session.commit()
    st_ = campaign_status(session=session, campaign_id=b.cid, today=TODAY)
    text = check_all(render_task(task_view(st_, 1)))
    assert "🔴 甲局 · 进行中 80%（逾期）" in text
    assert "↩️ 退回原因：缺少&附件" in text
    assert "📝 进展<说明>" in text and "…" in text  # shortened
    assert "🟡 乙局 · 已提交（逾期待审核）" in text
    assert "截止 8月31日（逾期1天；已调整，原定 7月31日）" in text


def test_big_campaign_splits_cleanly(session: Session) -> None:
    b = CampaignBuilder(session)
    b.phases_2021()
    units = [b.unit(f"{EVIL}{k}") for k in range(30)]
    cat = b.category(1, "质量发展促进机制", stated_points=100)
    for k in range(120):
        b.task(k + 1, units=units[k % 30: k % 30 + 3], deadline=date(2021, 8, 1) + timedelta(k % 40),
               title=f"<i>任务</i>&{k}" * 5)
        b.item(k + 1, cat, max_points=2, criteria=[1, 1], units=units[:2],
               deadline=date(2021, 8, 1) + timedelta(k % 50))
    session.commit()
    st_ = campaign_status(session=session, campaign_id=b.cid, today=TODAY)
    for msgs in (render_status(st_), render_unit(unit_view(st_, units[0].id)),
                 render_task(task_view(st_, 5))):
        check_all(msgs)
    assert len(render_unit(unit_view(st_, units[0].id))) > 1


def test_render_overview(session: Session) -> None:
    seeded_campaign(session)
    other = CampaignBuilder(session, slug="b", name="乙区创建", district="合肥市<乙>区")
    other.outbox(OutboxState.failed)
    session.commit()
    lines = province_overview(session=session, today=TODAY)
    text = check_all(render_overview(lines))
    assert text.startswith("🗺 各区创建进度（截至2021年9月1日）")
    # Tasks counted as tasks on both sides (3 tasks overdue, for 6 of their units).
    assert "🔴 合肥市瑶海区 核定 0 / 自评 0 / 100 ＋ 加分 0 · 完成任务 0/19 · 逾期任务 3 · 第二阶段" in text
    assert "🟢 合肥市<乙>区" in text and "📮1" in text
    assert check_all(render_overview([], today=TODAY)).endswith("（暂无进行中的创建活动）")


def test_category_table_marks_attainable_below_stated(seeded: CampaignStatus) -> None:
    rows = category_table(seeded).lines
    assert rows[0].split() == ["类别", "核定", "自评", "满分"]
    assert [r.split()[0] for r in rows[1:]] == [
        "质量发展促进机制", "质量技术", "质量工作成效", "质量安全水平", "基本分合计", "加分项"]


def test_render_status_says_when_a_year_has_no_official_calendar(session: Session) -> None:
    cid = seeded_campaign(session, shift_to=date(2026, 12, 1), slug="late")
    session.flush()
    st_ = campaign_status(session=session, campaign_id=cid, today=date(2026, 12, 5))
    assert 2027 in st_.calendar_gaps
    text = check_all(render_status(st_))
    years = "、".join(f"{y}年" for y in st_.calendar_gaps)
    lines = [line for line in text.split("\n") if "尚未收录" in line]
    assert len(lines) == 1
    assert lines[0].startswith(f"⚠️ {years}的法定节假日和调休安排尚未收录：目前按法定节假日（不含调休）计算工作日。")
    assert "data/calendar/2027.toml" in lines[0]
    # A plan inside the years on record says nothing.
    old = seeded_campaign(session, slug="old")
    session.flush()
    assert "尚未收录" not in check_all(render_status(
        campaign_status(session=session, campaign_id=old, today=date(2021, 9, 1))))
