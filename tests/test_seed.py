"""The seed against the document, its checks, the scoring rule, and its import."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlmodel import select

from infra.db import read_only, transaction
from models.audit import Actor
from models.scoring import attainable_points, criteria_points, item_score, reachable_points
from models.seed import (
    Finding,
    ImportReport,
    SeedDoc,
    SeedError,
    check_seed,
    import_seed,
    load_seed,
    parse_seed,
    plan_start,
)
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    AuditLog,
    Campaign,
    Criterion,
    CriterionUnit,
    Evidence,
    ItemUnit,
    Phase,
    ScoreCategory,
    ScoreItem,
    Task,
    TaskGroup,
    Unit,
)
from tests.conftest import DOCUMENT_PATH, SEED_PATH

NOW = datetime(2021, 7, 2, 9, 0, tzinfo=UTC)
GROUP = "区质量强区领导小组成员单位"
D0710, D0830, D1231 = date(2021, 7, 10), date(2021, 8, 30), date(2021, 12, 31)

# ----------------------------------------------------------------------------------
# The expected tables, transcribed by hand from the document (Annex 2), independently
# of data/seed.json: item -> (分数, [each 评分方法 sub-criterion's points in order]).
EXPECTED_POINTS: dict[int, tuple[float, list[float]]] = {
    1: (5, [1, 2, 1, 1]),
    2: (2, [2]),
    3: (4, [2, 2]),
    4: (2, [2]),
    5: (3, [1, 2]),
    6: (2, [2]),
    7: (4, [2, 2]),
    8: (4, [2, 2, 1]),
    9: (4, [2, 1, 1]),
    10: (4, [2, 1, 1]),
    11: (6, [2, 2, 2]),
    12: (4, [2, 2, 1]),
    13: (3, [3]),
    14: (8, [1, 2, 0.5, 1.5, 2, 1]),
    15: (4, [4]),
    16: (2, [2]),
    17: (5, [2, 3]),
    18: (5, [2, 3]),
    19: (4, [1, 1]),
    20: (6, [2, 2, 1, 1]),
    21: (3, [1.5, 1.5]),
    22: (2, [2]),
    23: (3, [1, 1, 1]),
    24: (4, [2, 2]),
    25: (3, [1, 1, 2]),
    26: (3, [1, 1, 1]),
    27: (3, [1, 1, 1]),
    28: (3, [3, 2]),
    29: (3, [3]),
    30: (2, [2]),
}
# category no -> (name, stated points or None, items)
EXPECTED_CATEGORIES: dict[int, tuple[str, float | None, range]] = {
    1: ("质量发展促进机制", 22, range(1, 8)),
    2: ("质量技术", None, range(8, 12)),
    3: ("质量工作成效", 44, range(12, 23)),
    4: ("质量安全水平", 16, range(23, 28)),
    5: ("加分项", 10, range(28, 31)),
}
EXPECTED_SUBCATEGORIES: dict[int, str | None] = {
    1: "组织保障", **dict.fromkeys(range(2, 7), "工作保障"), 7: "经费保障",
    8: "质量公共服务平台建设", 9: "标准化工作", 10: "计量工作", 11: "质量管理基础",
    **dict.fromkeys(range(12, 15), "产品质量"), **dict.fromkeys(range(15, 19), "工程质量"),
    **dict.fromkeys(range(19, 23), "服务质量"), **dict.fromkeys(range(23, 28), "质量安全"),
    **dict.fromkeys(range(28, 31), None),
}
MSA, HOUSING = "区市场监管局", "区住建局"
EXPECTED_ITEM_UNITS: dict[int, list[str]] = {
    1: ["区委办", "区政府办", MSA], 2: [MSA], 3: ["区发改委", MSA, "区财政局"], 4: [MSA],
    5: [MSA], 6: [GROUP], 7: ["区财政局"], 8: [MSA], 9: [MSA], 10: [], 11: [MSA], 12: [MSA],
    13: [MSA, "区经信局"], 14: [MSA, "区农林水务局"], 15: [HOUSING], 16: [HOUSING],
    17: [HOUSING], 18: [HOUSING], 19: [GROUP], 20: [MSA], 21: ["区文旅局"], 22: [MSA],
    23: [MSA], 24: [GROUP], 25: [MSA], 26: ["区卫健委", MSA, HOUSING], 27: [MSA],
    28: [GROUP], 29: [GROUP], 30: [GROUP],
}
EXPECTED_ITEM_DEADLINES: dict[int, date | None] = {
    **dict.fromkeys(range(1, 31), D1231), 2: D0710, 4: D0710, 10: None, 26: None, 27: None,
}
# Annex 1, by hand: task -> (group, units, deadline) for the sample the brief names.
EXPECTED_TASKS: dict[int, tuple[int, list[str], date]] = {
    1: (1, ["区委办", "区政府办", "区发改委", MSA], D0710),
    2: (1, [MSA], D0830),
    3: (1, ["区委组织部", "区委宣传部", "区委党校"], D1231),
    4: (1, [MSA], D0710),
    5: (2, ["区发改委", "区财政局", MSA, "区经信局", "区教体局", "区科技局", HOUSING, "区商务局",
            "区数据资源局", "区文旅局", "区卫健委"], D1231),
    13: (4, ["区农林水务局", MSA, "区经信局", "区商务局", HOUSING, "区文旅局"], D1231),
    19: (6, [MSA, HOUSING, "区卫健委", "区文旅局", "区农林水务局"], D1231),
}
EXPECTED_UNITS = {
    "区委办", "区政府办", "区发改委", "区市场监管局", "区委组织部", "区委宣传部", "区委党校",
    "区财政局", "区经信局", "区教体局", "区科技局", "区住建局", "区商务局", "区数据资源局",
    "区文旅局", "区卫健委", "区农林水务局",
}
# What check_seed must report on the real seed: exactly these (code, number).
EXPECTED_FINDINGS = sorted([
    ("item_unreachable", 10),       # criteria 2-3 need a 本级法定计量检定机构: 2 of 4 reachable
    ("item_no_units", 10),          # "区域无法定计量检定机构": criterion 1 (2 points) has no owner
    ("item_under", 19),             # 1 + 1 = 2 < 4
    ("item_over", 25),              # 1 + 1 + 2 = 4 > 3
    ("item_over", 28),              # 3 + 2 = 5 > 3
    ("category_no_total", 2),       # 质量技术: no stated total (18 by the items)
    ("category_total_raw", 3),      # 质量工作成效: items 46 vs stated 44 (attainable 44)
    ("category_total_raw", 5),      # 加分项: items 8 vs stated 10
    ("category_total_attainable", 5),
    ("base_total_raw", 0),          # 102 vs 100 (attainable 100)
    ("bonus_total_raw", 0),         # 8 vs 10
    ("bonus_total_attainable", 0),
])


# ---------------------------------------------------------------------------- helpers


def normalize(text: str) -> str:
    """The document's text without PDF noise: no whitespace, no doubled brackets."""
    text = re.sub(r"\s+", "", text)
    for noise, clean in (("））", "）"), ("）)", "）"), ("，）", "，"), (",", "，")):
        while noise in text:
            text = text.replace(noise, clean)
    return text


@pytest.fixture(scope="module")
def document() -> str:
    return normalize(DOCUMENT_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def seed() -> SeedDoc:
    return load_seed(SEED_PATH)


def raw_seed() -> dict[str, Any]:
    return json.loads(SEED_PATH.read_text(encoding="utf-8"))


def doctored(edit: Any) -> SeedDoc:
    data = copy.deepcopy(raw_seed())
    edit(data)
    return parse_seed(data)


def fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def run_import(engine: Engine, doc: SeedDoc, **kw: Any) -> ImportReport:
    with transaction(engine) as s:
        return import_seed(session=s, doc=doc, now=kw.pop("now", NOW), actor=Actor.cli(), **kw)


TABLES = [Campaign, Unit, Phase, TaskGroup, Task, Assignment, ScoreCategory, ScoreItem, ItemUnit,
          Criterion, CriterionUnit, Assessment, Evidence, AuditLog]


def db_state(engine: Engine) -> dict[str, list[str]]:
    """Every row of every seed-related table, as sorted JSON."""
    with read_only(engine) as s:
        return {
            t.__name__: sorted(json.dumps(r.model_dump(), sort_keys=True, default=str)
                               for r in s.exec(select(t)).all())
            for t in TABLES
        }


def count(engine: Engine, table: Any, *where: Any) -> int:
    with read_only(engine) as s:
        return n_rows(s, table, *where)


def n_rows(s: Any, table: Any, *where: Any) -> int:
    return s.exec(select(func.count()).select_from(table).where(*where)).one()


def campaign_id(engine: Engine, slug: str = "yaohai-2021") -> int:
    with read_only(engine) as s:
        cid = s.exec(select(Campaign.id).where(Campaign.slug == slug)).one()
        assert cid is not None
        return cid


def assignment(s: Any, cid: int, task_no: int, unit: str) -> Assignment:
    return s.exec(
        select(Assignment).join(Task, Assignment.task_id == Task.id)
        .join(Unit, Assignment.unit_id == Unit.id)
        .where(Task.campaign_id == cid, Task.no == task_no, Unit.name == unit)
    ).one()


def criterion(s: Any, cid: int, item_no: int, no: int) -> Criterion:
    return s.exec(
        select(Criterion).join(ScoreItem, Criterion.item_id == ScoreItem.id)
        .where(ScoreItem.campaign_id == cid, ScoreItem.no == item_no, Criterion.no == no)
    ).one()


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def on_execute(_conn: Any, _cur: Any, stmt: str, *_a: Any) -> None:
        seen.append(stmt)

    event.listen(engine, "before_cursor_execute", on_execute)
    yield seen
    event.remove(engine, "before_cursor_execute", on_execute)


# ================================================================ the seed vs the document


def test_top_level_contract(seed: SeedDoc) -> None:
    data = raw_seed()
    for key in ("schema_version", "campaign", "units", "unit_groups", "phases", "task_groups",
                "tasks", "score_categories", "score_items"):
        assert key in data
    c = seed.campaign
    assert seed.schema_version == 1
    assert (c.slug, c.district, c.doc_number, c.doc_date, c.timezone) == (
        "yaohai-2021", "合肥市瑶海区", "瑶办发〔2021〕25号", date(2021, 7, 1), "Asia/Shanghai")
    assert (c.base_points, c.bonus_points, c.lead_unit) == (100, 10, "区市场监管局")
    assert "瑶海区争创安徽省质量强县（市、区）实施方案" in (c.doc_title or "")
    assert "中共合肥市瑶海区委办公室" in (c.issuer or "")
    assert "合肥市瑶海区人民政府办公室" in (c.issuer or "")


def test_counts(seed: SeedDoc) -> None:
    assert [g.no for g in seed.task_groups] == [1, 2, 3, 4, 5, 6]
    assert [t.no for t in seed.tasks] == list(range(1, 20))
    assert [i.no for i in seed.score_items] == list(range(1, 31))
    assert [p.no for p in seed.phases] == [1, 2, 3, 4]
    assert {u.name for u in seed.units} == EXPECTED_UNITS and len(seed.units) == 17
    assert all(u.is_member for u in seed.units)
    assert [u.name for u in seed.units if u.is_lead] == ["区市场监管局"]
    assert seed.unit_groups[GROUP].members == "all"


def test_task_groups_are_the_six_lines_of_annex_1(seed: SeedDoc, document: str) -> None:
    annex1 = document[document.index("附件1安徽省"):document.index("附件2安徽省")]
    for g in seed.task_groups:
        assert g.title.startswith("围绕") and g.title in annex1
    group_of = {t.no: t.group for t in seed.tasks}
    assert group_of == {**dict.fromkeys(range(1, 5), 1), **dict.fromkeys(range(5, 8), 2),
                        **dict.fromkeys(range(8, 11), 3), **dict.fromkeys(range(11, 14), 4),
                        **dict.fromkeys(range(14, 17), 5), **dict.fromkeys(range(17, 20), 6)}


def test_phases(seed: SeedDoc) -> None:
    got = [(p.no, p.name, p.start, p.end) for p in seed.phases]
    assert got == [
        (1, "制定方案，落实目标任务", date(2021, 7, 1), date(2021, 7, 10)),
        (2, "全面创建，实现总体达标", date(2021, 7, 10), date(2021, 12, 31)),
        (3, "巩固提高，做好迎检准备", date(2022, 1, 1), date(2022, 3, 1)),
        (4, "迎接验收，全面提升质量发展水平", date(2022, 3, 1), date(2022, 4, 1)),
    ]
    assert "发文日期" in (seed.phases[0].start_note or "")
    assert plan_start(seed) == date(2021, 7, 1)


@pytest.mark.parametrize("no", sorted(EXPECTED_TASKS))
def test_task_sample_by_hand(seed: SeedDoc, no: int) -> None:
    group, units, deadline = EXPECTED_TASKS[no]
    t = seed.task(no)
    assert (t.group, t.units, t.deadline) == (group, units, deadline)


def test_every_task_matches_the_body_of_the_document(seed: SeedDoc, document: str) -> None:
    """Section 三 repeats the 19 tasks with "（责任单位：…，完成时限：…）": compare all."""
    body = document[document.index("三、工作任务"):document.index("四、工作步骤")]
    found = re.findall(r"（责任单位：(.*?)，完成时限：(\d{4})年(\d+)月(\d+)日前）", body)
    assert len(found) == 19
    for t, (units, y, m, d) in zip(seed.tasks, found, strict=True):
        assert set(units.split("、")) == set(t.units), t.no
        assert date(int(y), int(m), int(d)) == t.deadline, t.no


def test_task_texts_are_the_documents(seed: SeedDoc, document: str) -> None:
    annex1 = document[document.index("附件1安徽省"):document.index("附件2安徽省")]
    body = document[document.index("三、工作任务"):document.index("四、工作步骤")]
    for t in seed.tasks:
        assert f"{t.no}、{t.title}" in annex1, t.no
        assert f"{t.no}.{t.detail.rstrip('。')}" in body, t.no


def test_every_item_points_and_criteria_points(seed: SeedDoc) -> None:
    got = {i.no: (i.max_points, [c.points for c in i.criteria]) for i in seed.score_items}
    assert got == EXPECTED_POINTS
    for it in seed.score_items:
        assert [c.no for c in it.criteria] == list(range(1, len(it.criteria) + 1))


def test_categories_and_subcategories(seed: SeedDoc) -> None:
    cats = {c.no: (c.name, c.stated_points) for c in seed.score_categories}
    assert cats == {no: (name, pts) for no, (name, pts, _) in EXPECTED_CATEGORIES.items()}
    assert [c.is_bonus for c in seed.score_categories] == [False, False, False, False, True]
    for _, (name, _, items) in EXPECTED_CATEGORIES.items():
        assert [i.no for i in seed.score_items if i.category == name] == list(items)
    assert {i.no: i.subcategory for i in seed.score_items} == EXPECTED_SUBCATEGORIES


def test_item_units_and_deadlines(seed: SeedDoc) -> None:
    assert {i.no: i.units for i in seed.score_items} == EXPECTED_ITEM_UNITS
    assert {i.no: i.deadline for i in seed.score_items} == EXPECTED_ITEM_DEADLINES
    for no in (26, 27):
        assert seed.item(no).deadline_note == "全过程"


def test_item_samples_by_hand(seed: SeedDoc) -> None:
    one = seed.item(1)
    assert [c.text for c in one.criteria] == [
        "成立党政主要领导双牵头的质量发展委员会",
        "政府工作报告中明确提出质量强县（市、区）目标任务",
        "每年至少召开一次质量发展委员会会议",
        "地方党政主要领导出席会议做出指示",
    ]
    three = seed.item(3)
    assert three.units == ["区发改委", "区市场监管局", "区财政局"] and three.deadline == D1231
    # Item 8: the platform (2) plus national (+2) or provincial (+1), at most 4.
    eight = seed.item(8)
    assert [c.tier_group for c in eight.criteria] == [None, "质检中心级别", "质检中心级别"]
    assert attainable_points(eight.max_points, eight.criteria) == 4
    twelve = seed.item(12)
    assert twelve.criteria[1].tier_group == twelve.criteria[2].tier_group is not None
    # Item 10: no unit, no deadline; the criteria about the 本级机构 cannot be met.
    ten = seed.item(10)
    assert ten.units == [] and ten.deadline is None
    assert ten.units_note == "区域无法定计量检定机构。"
    assert "区域无法定计量检定机构" in (ten.deadline_note or "")
    assert [c.not_attainable for c in ten.criteria] == [False, True, True]
    assert all(c.not_attainable_reason == "区域无法定计量检定机构。" for c in ten.criteria[1:])
    assert ten.note and "第1条" in ten.note
    assert (attainable_points(ten.max_points, ten.criteria),
            reachable_points(ten.max_points, ten.criteria)) == (4, 2)
    # Item 14: halves; the farm-produce check belongs to 区农林水务局.
    fourteen = seed.item(14)
    assert [c.points for c in fourteen.criteria] == [1, 2, 0.5, 1.5, 2, 1]
    assert fourteen.criteria[4].units == ["区农林水务局"]
    assert "农产品" in fourteen.criteria[4].text
    assert all(c.units == ["区市场监管局"] for i, c in enumerate(fourteen.criteria) if i != 4)
    # Item 26: over the whole process; food to 市场监管, works to 住建, drugs unassigned.
    twenty_six = seed.item(26)
    assert twenty_six.deadline is None and twenty_six.deadline_note == "全过程"
    assert [c.units for c in twenty_six.criteria] == [None, ["区市场监管局"], ["区住建局"]]


def test_unit_names_occur_in_the_document(seed: SeedDoc, document: str) -> None:
    for u in seed.units:
        assert u.name in document, u.name
    for name in seed.unit_groups:
        assert name in document
    for u in seed.units:
        assert len(set(u.aliases)) == len(u.aliases)


def test_texts_and_numbers_occur_in_the_document(seed: SeedDoc, document: str) -> None:
    annex2 = document[document.index("附件2安徽省"):]
    for it in seed.score_items:
        assert it.text is not None and it.text in annex2, it.no
        for c in it.criteria:
            assert c.text in it.text, (it.no, c.no)
            for number in re.findall(r"\d+(?:\.\d+)?%?", c.text):
                assert number in annex2, (it.no, c.no, number)
            if c.tier_group is None:
                # The points stand right after the text: "……（2分）".
                assert f"{c.text}（{fmt(c.points)}分）" in it.text, (it.no, c.no)
            else:
                assert f"{fmt(c.points)}分" in c.text, (it.no, c.no)
    for sec in seed.sections:
        for para in sec.paragraphs:
            assert normalize(para) in document
    for g in seed.task_groups:
        if g.detail:
            assert g.detail in document


def test_arithmetic_of_the_table(seed: SeedDoc) -> None:
    base = [i for i in seed.score_items if i.category != "加分项"]
    bonus = [i for i in seed.score_items if i.category == "加分项"]
    assert sum(i.max_points for i in base) == 102
    assert sum(attainable_points(i.max_points, i.criteria) for i in base) == 100
    assert sum(i.max_points for i in bonus) == 8 and sum(attainable_points(i.max_points, i.criteria) for i in bonus) == 8
    for no, (name, stated, items) in EXPECTED_CATEGORIES.items():
        att = sum(attainable_points(seed.item(n).max_points, seed.item(n).criteria) for n in items)
        raw = sum(seed.item(n).max_points for n in items)
        assert (raw, att) == {1: (22, 22), 2: (18, 18), 3: (46, 44), 4: (16, 16), 5: (8, 8)}[no]
        if stated is not None and no != 5:
            assert att == stated, name
    assert criteria_points(seed.item(19).criteria) == 2
    assert criteria_points(seed.item(25).criteria) == 4
    assert criteria_points(seed.item(28).criteria) == 5


# ====================================================================== the scoring rule


class _C:
    def __init__(self, points: float, tier: str | None = None, na: bool = False) -> None:
        self.points, self.tier_group, self.not_attainable = points, tier, na


def test_item_score_rule() -> None:
    platform, national, provincial = _C(2), _C(2, "t"), _C(1, "t")
    assert item_score(max_points=4, met=[platform, national, provincial]) == 4
    assert item_score(max_points=4, met=[platform, provincial]) == 3
    assert item_score(max_points=4, met=[national, provincial]) == 2
    assert item_score(max_points=3, met=[_C(3), _C(2)]) == 3  # item 28: capped
    assert item_score(max_points=4, met=[]) == 0
    # An item's points and its criteria.
    assert attainable_points(4, [_C(1), _C(1)]) == 2  # item 19
    assert reachable_points(4, [_C(2), _C(1, na=True), _C(1, na=True)]) == 2
    with pytest.raises(TypeError):
        attainable_points(4)  # criteria are required


points_st = st.sampled_from([0.5, 1, 1.5, 2, 3])


@given(
    max_points=points_st,
    crit=st.lists(st.tuples(points_st, st.sampled_from([None, "a", "b"])), max_size=6),
    data=st.data(),
)
def test_item_score_properties(max_points: float, crit: list[tuple[float, str | None]],
                               data: st.DataObject) -> None:
    cs = [_C(p, t) for p, t in crit]
    subset = data.draw(st.lists(st.sampled_from(cs), unique_by=id) if cs else st.just([]))
    full = item_score(max_points=max_points, met=cs)
    part = item_score(max_points=max_points, met=subset)
    assert 0 <= part <= full <= max_points  # capped, and meeting more never loses points
    assert full == attainable_points(max_points, cs)
    tiers = {t for _, t in crit if t}
    assert criteria_points(cs) <= sum(p for p, _ in crit)
    assert criteria_points(cs) == sum(p for p, t in crit if t is None) + sum(
        max(p for p, t in crit if t == g) for g in tiers)


# ============================================================================ check_seed


def test_check_reports_exactly_the_inconsistencies(seed: SeedDoc) -> None:
    findings = check_seed(seed)
    assert all(f.level == "warning" for f in findings)
    assert sorted((f.code, f.no or 0) for f in findings) == EXPECTED_FINDINGS
    by = {(f.code, f.no): f for f in findings}
    f25 = by[("item_over", 25)]
    assert f25.figures == {"criteria": 4, "max_points": 3}
    assert "第25项" in f25.message and "4分" in f25.message and "3分" in f25.message
    assert f25.where == "score_items[no=25]"
    assert by[("item_over", 28)].figures == {"criteria": 5, "max_points": 3}
    assert by[("item_under", 19)].figures == {"criteria": 2, "max_points": 4}
    assert by[("item_unreachable", 10)].figures["reachable"] == 2
    assert by[("category_total_raw", 3)].figures == {"raw": 46, "attainable": 44, "stated": 44}
    assert "44分" in by[("category_total_raw", 3)].message
    assert by[("category_no_total", 2)].figures == {"raw": 18, "attainable": 18}
    assert by[("base_total_raw", None)].figures == {"raw": 102, "attainable": 100, "stated": 100}
    assert by[("bonus_total_attainable", None)].figures["attainable"] == 8
    assert ("base_total_attainable", None) not in by
    assert ("category_total_attainable", 3) not in by


def errors_of(doc: SeedDoc) -> list[tuple[str, int | None]]:
    return sorted(((f.code, f.no) for f in check_seed(doc) if f.level == "error"),
                  key=lambda x: (x[0], x[1] or 0))


def test_check_errors_on_doctored_copies() -> None:
    def unknown_unit(d: dict[str, Any]) -> None:
        d["tasks"][2]["units"].append("区不存在局")
        d["score_items"][13]["criteria"][4]["units"] = ["区农业局"]

    assert errors_of(doctored(unknown_unit)) == [("unknown_unit", 3), ("unknown_unit", 14)]

    def bad_points(d: dict[str, Any]) -> None:
        d["score_items"][13]["criteria"][2]["points"] = 0.3
        d["score_items"][0]["max_points"] = 5.25

    found = [f for f in check_seed(doctored(bad_points)) if f.level == "error"]
    assert [(f.code, f.no) for f in found] == [("bad_points", 1), ("bad_points", 14)]
    assert "0.3" in found[1].message and "第14项第3条" in found[1].message

    def duplicates(d: dict[str, Any]) -> None:
        d["score_items"][1]["no"] = 1
        d["tasks"][5]["no"] = 5
        d["score_items"][2]["criteria"][1]["no"] = 1

    assert errors_of(doctored(duplicates)) == [("duplicate_no", 1), ("duplicate_no", 3),
                                               ("duplicate_no", 5), ("unknown_task", 6)]

    def links_and_points(d: dict[str, Any]) -> None:
        d["links"].append({"task": 99, "criterion": "7.1"})
        d["links"].append({"task": 7, "criterion": "7.9"})
        d["links"].append(dict(d["links"][0]))
        d["score_items"][6]["criteria"][0]["points"] = 9  # item 7 is worth 4

    assert errors_of(doctored(links_and_points)) == [
        ("criterion_over_item", 7), ("duplicate_link", 1), ("unknown_criterion", 7), ("unknown_task", 99)]

    def references(d: dict[str, Any]) -> None:
        d["tasks"][0]["group"] = 9
        d["score_items"][0]["category"] = "不存在的类别"
        d["campaign"]["timezone"] = "Mars/Olympus"
        d["units"][1]["aliases"].append("财政局")  # 区政府办 claims 区财政局's alias
        d["units"][0]["is_lead"] = True

    codes = {c for c, _ in errors_of(doctored(references))}
    assert codes == {"unknown_task_group", "unknown_category", "bad_timezone", "alias_conflict",
                     "lead_unit_mismatch"}


def test_check_aliases_and_groups_resolve() -> None:
    def by_alias(d: dict[str, Any]) -> None:
        d["tasks"][0]["units"] = ["区市场监督管理局", "经信局"]
        d["score_items"][5]["units"] = ["领导小组成员单位"]

    assert errors_of(doctored(by_alias)) == []


def test_check_phases_and_deadlines() -> None:
    def disorder(d: dict[str, Any]) -> None:
        d["phases"][2]["start"], d["phases"][2]["end"] = "2021-06-01", "2021-06-30"

    assert ("phase_order", 3) in errors_of(doctored(disorder))

    def overlap_and_late(d: dict[str, Any]) -> None:
        d["phases"][2]["start"] = "2021-12-01"
        d["tasks"][18]["deadline"] = "2022-05-01"
        d["score_items"][0]["deadline"] = "2021-06-30"

    found = [(f.code, f.no) for f in check_seed(doctored(overlap_and_late))
             if f.code.startswith(("phase", "deadline"))]
    assert sorted(found) == [("deadline_outside_phases", 1), ("deadline_outside_phases", 19),
                             ("phase_overlap", 3)]

    def gap(d: dict[str, Any]) -> None:
        d["phases"][2]["start"] = "2022-01-15"

    assert [f.code for f in check_seed(doctored(gap)) if f.code.startswith("phase")] == [
        "phase_gap"]


def test_check_item_warnings_follow_the_data() -> None:
    def fix_table(d: dict[str, Any]) -> None:
        d["score_items"][18]["criteria"].append({"no": 3, "points": 2, "text": "x"})
        d["score_items"][24]["criteria"][2]["points"] = 1
        d["score_items"][27]["criteria"].pop()
        d["score_items"][9]["units"] = ["区市场监管局"]

    codes = {(f.code, f.no) for f in check_seed(doctored(fix_table))}
    assert not {("item_under", 19), ("item_over", 25), ("item_over", 28), ("item_no_units", 10)} & codes
    assert ("category_total_raw", 3) in codes  # 46 stated as 44 still
    assert ("category_total_attainable", 3) in codes  # now 46 attainable


# ============================================================================ loading


def test_load_seed_errors_name_the_json_path(tmp_path: Path) -> None:
    bad = raw_seed()
    bad["score_items"][13]["criteria"][2]["points"] = "0.5"
    bad["tasks"][0]["owner"] = "x"
    p = tmp_path / "seed.json"
    p.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(SeedError) as err:
        load_seed(p)
    msg = str(err.value)
    assert "$.score_items[13].criteria[2].points" in msg and "no=14" in msg
    assert "$.tasks[0].owner" in msg

    p.write_text('{"schema_version": 1,\n "campaign": }', encoding="utf-8")
    with pytest.raises(SeedError, match="第2行"):
        load_seed(p)
    with pytest.raises(SeedError):
        load_seed(tmp_path / "missing.json")

    bad = raw_seed()
    bad["score_items"][9]["criteria"][1]["not_attainable_reason"] = None
    with pytest.raises(SeedError, match=r"score_items\[9\]\.criteria\[1\]"):
        parse_seed(bad)
    bad = raw_seed()
    bad["tasks"][0]["deadline"] = "2021-13-01"
    with pytest.raises(SeedError, match=r"tasks\[0\]\.deadline"):
        parse_seed(bad)


# ============================================================================== import


def test_import_creates_everything(engine: Engine, seed: SeedDoc) -> None:
    report = run_import(engine, seed)
    assert report.created and report.changed
    assert report.added["task"] == 19 and report.added["scoreitem"] == 30
    assert report.added["criterion"] == sum(len(v[1]) for v in EXPECTED_POINTS.values())
    assert [w.code for w in report.warnings] == [f.code for f in check_seed(seed)]
    assert "yaohai-2021" in report.summary()
    cid = campaign_id(engine)
    with read_only(engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        assert (camp.doc_date, camp.date_shift_days, camp.stated_base_points) == (
            date(2021, 7, 1), 0, 100)
        assert sorted((w["code"], w["no"] or 0) for w in camp.seed_warnings) == EXPECTED_FINDINGS
        assert camp.seed_sha256 and len(camp.seed_sha256) == 64
        units = {u.name: u for u in s.exec(select(Unit).where(Unit.campaign_id == cid))}
        assert set(units) == EXPECTED_UNITS
        assert units["区市场监管局"].is_lead and "区市场监督管理局" in units["区市场监管局"].aliases
        tasks = {t.no: t for t in s.exec(select(Task).where(Task.campaign_id == cid))}
        assert tasks[2].deadline == tasks[2].planned_deadline == D0830
        n_assign = sum(len(t.units) for t in seed.tasks)
        assert n_rows(s, Assignment, Assignment.campaign_id == cid) == n_assign
        a = assignment(s, cid, 13, "区农林水务局")
        assert (a.state, a.retired) == (AssignmentState.not_started, False)
        items = {i.no: i for i in s.exec(select(ScoreItem).where(ScoreItem.campaign_id == cid))}
        assert items[6].all_members and not items[1].all_members
        iu = s.exec(select(ItemUnit).where(ItemUnit.item_id == items[6].id)).all()
        assert len(iu) == 17
        assert s.exec(select(ItemUnit).where(ItemUnit.item_id == items[10].id)).all() == []
        assert items[26].deadline is None and items[26].deadline_note == "全过程"
        assert items[14].max_points == 8
        c = criterion(s, cid, 14, 5)
        cu = s.exec(select(CriterionUnit).where(CriterionUnit.criterion_id == c.id)).all()
        assert [units_by_id.name for units_by_id in
                (s.get(Unit, x.unit_id) for x in cu) if units_by_id] == ["区农林水务局"]
        assert criterion(s, cid, 14, 3).points == 0.5
        assert criterion(s, cid, 10, 2).not_attainable
        assert criterion(s, cid, 8, 3).tier_group == "质检中心级别"
        assert n_rows(s, CriterionUnit) == sum(
            len(c.units or []) for i in seed.score_items for c in i.criteria)
        # A new campaign: one audit row for the whole import.
        audits = s.exec(select(AuditLog).where(AuditLog.campaign_id == cid)).all()
        assert [(a.action, a.entity) for a in audits] == [("seed.import", "campaign")]
        assert audits[0].after and audits[0].after["added"]["task"] == 19
        cats = {c.no: c for c in s.exec(select(ScoreCategory).where(ScoreCategory.campaign_id == cid))}
        assert cats[2].stated_points is None and cats[5].is_bonus
        phases = s.exec(select(Phase).where(Phase.campaign_id == cid).order_by(Phase.no)).all()
        assert [(p.start_date, p.end_date) for p in phases] == [(p.start, p.end) for p in seed.phases]


def test_import_is_idempotent(engine: Engine, seed: SeedDoc) -> None:
    run_import(engine, seed)
    before = db_state(engine)
    report = run_import(engine, seed, now=NOW + timedelta(days=3))
    assert not report.changed and report.changes == [] and report.stale == []
    assert "无变化" in report.summary()
    assert db_state(engine) == before  # same ids, same values, no audit row, same updated_at
    # A seed read again from disk (new objects, same content) changes nothing either.
    run_import(engine, load_seed(SEED_PATH), now=NOW + timedelta(days=4))
    assert db_state(engine) == before


def test_import_is_a_handful_of_queries(engine: Engine, seed: SeedDoc,
                                        statements: list[str]) -> None:
    run_import(engine, seed)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(statements) <= 20, statements
    assert len(inserts) <= 13  # one per table (the task-criterion links included)
    statements.clear()
    run_import(engine, seed)
    assert len(statements) <= 16
    assert not [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]


def test_import_refuses_a_seed_with_errors(engine: Engine) -> None:
    def broken(d: dict[str, Any]) -> None:
        d["tasks"][0]["units"] = ["区不存在局"]

    with pytest.raises(SeedError) as err:
        run_import(engine, doctored(broken))
    assert "区不存在局" in str(err.value) and "unknown_unit" in str(err.value)
    assert [f.code for f in err.value.findings] == ["unknown_unit"]
    assert count(engine, Campaign) == 0
    with pytest.raises(SeedError):
        run_import(engine, load_seed(SEED_PATH), slug="Bad Slug")


def test_reimport_after_an_edit_keeps_history_and_audits(engine: Engine, seed: SeedDoc) -> None:
    run_import(engine, seed)
    cid = campaign_id(engine)
    with transaction(engine) as s:
        edu = assignment(s, cid, 5, "区教体局")
        edu.state, edu.percent, edu.note = AssignmentState.in_progress, 40, "已起草"
        fin = assignment(s, cid, 5, "区财政局")
        fin.percent = 70
        crit = criterion(s, cid, 16, 1)
        task5 = s.exec(select(Task).where(Task.campaign_id == cid, Task.no == 5)).one()
        s.add(Assessment(campaign_id=cid, criterion_id=crit.id, state=AssessmentState.claimed,
                         unit_id=edu.unit_id, claim_note="已达标"))
        s.add(Evidence(campaign_id=cid, task_id=task5.id, unit_id=edu.unit_id,
                       criterion_id=crit.id, sha256="0" * 64, size=3, file_name="a.pdf"))
        s.flush()
        ids_before = {
            "edu": edu.id, "fin": fin.id, "crit": crit.id, "task5": task5.id,
        }
    state_before = db_state(engine)
    audit_before = count(engine, AuditLog)

    def edit(d: dict[str, Any]) -> None:
        d["tasks"][4]["title"] = d["tasks"][4]["title"] + "（修订）"
        d["tasks"][4]["units"].remove("区教体局")
        d["tasks"][2]["deadline"] = "2021-11-30"
        d["score_items"][15]["max_points"] = 3
        d["score_items"][15]["criteria"][0]["points"] = 3
        d["score_items"][0]["units"].append("区发改委")

    report = run_import(engine, doctored(edit), now=NOW + timedelta(days=10))
    assert report.changed and not report.created
    assert report.retired["assignment"] == 1
    assert report.updated["task"] == 2 and report.updated["scoreitem"] == 1
    assert report.updated["criterion"] == 1 and report.added["itemunit"] == 1

    with read_only(engine) as s:
        edu2 = s.get(Assignment, ids_before["edu"])
        assert edu2 is not None and edu2.retired
        assert (edu2.state, edu2.percent, edu2.note) == (AssignmentState.in_progress, 40, "已起草")
        fin2 = s.get(Assignment, ids_before["fin"])
        assert fin2 is not None and not fin2.retired and fin2.percent == 70
        assert s.exec(select(Assessment)).one().criterion_id == ids_before["crit"]
        assert s.exec(select(Evidence)).one().task_id == ids_before["task5"]
        task5 = s.get(Task, ids_before["task5"])
        assert task5 is not None and task5.title.endswith("（修订）")
        task3 = s.exec(select(Task).where(Task.campaign_id == cid, Task.no == 3)).one()
        assert task3.deadline == task3.planned_deadline == date(2021, 11, 30)
        c = s.get(Criterion, ids_before["crit"])
        assert c is not None and c.points == 3
        camp = s.get(Campaign, cid)
        assert camp is not None and camp.updated_at == NOW + timedelta(days=10)
        assert ("item_over", 16) not in {(w["code"], w["no"]) for w in camp.seed_warnings}
        audits = s.exec(select(AuditLog).where(AuditLog.id > audit_before)).all()
        by = {(a.action, a.entity, a.entity_id, tuple(sorted((a.before or {}).keys()))): a
              for a in audits}
        title = by[("seed.update", "task", ids_before["task5"], ("title",))]
        assert title.after == {"title": task5.title} and title.actor_kind == "cli"
        units = by[("seed.update", "task", ids_before["task5"], ("units",))]
        assert "区教体局" in units.before["units"] and "区教体局" not in units.after["units"]
        dl = by[("seed.update", "task", task3.id, ("deadline", "planned_deadline"))]
        assert dl.before == {"deadline": "2021-12-31", "planned_deadline": "2021-12-31"}
        assert dl.after == {"deadline": "2021-11-30", "planned_deadline": "2021-11-30"}
        retire = by[("seed.retire", "assignment", ids_before["edu"], ("retired",))]
        assert retire.after == {"retired": True} and retire.note
        pts = by[("seed.update", "criterion", ids_before["crit"], ("points",))]
        assert (pts.before, pts.after) == ({"points": 2.0}, {"points": 3.0})
        assert any(a.entity == "scoreitem" and a.before == {"max_points": 2.0} for a in audits)
        assert any(a.entity == "scoreitem" and (a.after or {}).get("units") for a in audits)
        assert [a.action for a in audits].count("seed.import") == 1
        assert all(a.at == NOW + timedelta(days=10) for a in audits)

    # Nothing else moved: every other row of the untouched tables is as it was.
    state_after = db_state(engine)
    for table in ("Phase", "TaskGroup", "ScoreCategory", "Unit", "CriterionUnit"):
        assert state_after[table] == state_before[table], table


def test_reimport_brings_a_unit_back_and_keeps_dropped_tasks(engine: Engine,
                                                             seed: SeedDoc) -> None:
    run_import(engine, seed)
    cid = campaign_id(engine)

    def drop(d: dict[str, Any]) -> None:
        d["tasks"][4]["units"].remove("区教体局")
        del d["tasks"][18]

    report = run_import(engine, doctored(drop))
    assert report.retired["assignment"] == 1 + 5  # 区教体局 on task 5, all of task 19
    assert report.retired["task"] == 1 and any("撤销任务19" in c for c in report.changes)
    assert count(engine, Task, Task.campaign_id == cid) == 19  # kept, shown as 已撤销
    with read_only(engine) as s:
        assert s.exec(select(Task).where(Task.campaign_id == cid, Task.no == 19)).one().retired
    report = run_import(engine, seed)  # the original again
    assert report.unretired["assignment"] == 6 and report.retired["assignment"] == 0
    with read_only(engine) as s:
        assert not assignment(s, cid, 5, "区教体局").retired
        assert not assignment(s, cid, 19, "区农林水务局").retired
        actions = [a.action for a in s.exec(select(AuditLog).where(AuditLog.entity == "assignment"))]
        assert actions.count("seed.retire") == 6 and actions.count("seed.unretire") == 6
    assert count(engine, Assignment, Assignment.campaign_id == cid) == sum(
        len(t.units) for t in seed.tasks)


def test_extended_deadline_survives_unless_the_plan_changes(engine: Engine,
                                                             seed: SeedDoc) -> None:
    run_import(engine, seed)
    cid = campaign_id(engine)
    extended = date(2021, 9, 30)
    with transaction(engine) as s:
        t2 = s.exec(select(Task).where(Task.campaign_id == cid, Task.no == 2)).one()
        t2.deadline = extended
        it3 = s.exec(select(ScoreItem).where(ScoreItem.campaign_id == cid, ScoreItem.no == 3)).one()
        it3.deadline = date(2022, 1, 15)

    def other_edit(d: dict[str, Any]) -> None:
        d["tasks"][0]["title"] += "（改）"

    run_import(engine, seed)
    run_import(engine, doctored(other_edit))
    with read_only(engine) as s:
        t2 = s.exec(select(Task).where(Task.campaign_id == cid, Task.no == 2)).one()
        assert (t2.deadline, t2.planned_deadline) == (extended, D0830)
        it3 = s.exec(select(ScoreItem).where(ScoreItem.campaign_id == cid, ScoreItem.no == 3)).one()
        assert (it3.deadline, it3.planned_deadline) == (date(2022, 1, 15), D1231)

    def new_plan(d: dict[str, Any]) -> None:
        d["tasks"][1]["deadline"] = "2021-09-15"

    report = run_import(engine, doctored(new_plan))
    assert any("原调整后的时限" in c for c in report.changes)
    with read_only(engine) as s:
        t2 = s.exec(select(Task).where(Task.campaign_id == cid, Task.no == 2)).one()
        assert t2.deadline == t2.planned_deadline == date(2021, 9, 15)
        audit = s.exec(select(AuditLog).where(AuditLog.entity == "task",
                                              AuditLog.entity_id == t2.id)).all()[-1]
        assert audit.before == {"deadline": "2021-09-30", "planned_deadline": "2021-08-30"}


def dates_of(engine: Engine, cid: int) -> dict[str, list[date | None]]:
    with read_only(engine) as s:
        phases = s.exec(select(Phase).where(Phase.campaign_id == cid).order_by(Phase.no)).all()
        tasks = s.exec(select(Task).where(Task.campaign_id == cid).order_by(Task.no)).all()
        items = s.exec(select(ScoreItem).where(ScoreItem.campaign_id == cid)
                       .order_by(ScoreItem.no)).all()
        return {
            "phase": [d for p in phases for d in (p.start_date, p.end_date)],
            "task": [d for t in tasks for d in (t.deadline, t.planned_deadline)],
            "item": [d for i in items for d in (i.deadline, i.planned_deadline)],
        }


def test_shift_to_moves_every_date_by_the_same_delta(engine: Engine, seed: SeedDoc) -> None:
    run_import(engine, seed, slug="plain")
    target = date(2025, 3, 3)
    report = run_import(engine, seed, slug="shifted", shift_to=target)
    delta = (target - date(2021, 7, 1)).days
    assert report.date_shift_days == delta
    plain, shifted = dates_of(engine, campaign_id(engine, "plain")), dates_of(
        engine, campaign_id(engine, "shifted"))
    for kind in plain:
        assert len(plain[kind]) == len(shifted[kind]) > 0
        for a, b in zip(plain[kind], shifted[kind], strict=True):
            assert (a is None and b is None) or (b - a).days == delta, kind  # type: ignore[operator]
    assert shifted["phase"][0] == target
    with read_only(engine) as s:
        camp = s.exec(select(Campaign).where(Campaign.slug == "shifted")).one()
        assert camp.date_shift_days == delta and camp.doc_date == date(2021, 7, 1)
    # Re-importing without shift_to keeps the shift (and changes nothing).
    before = db_state(engine)
    assert not run_import(engine, seed, slug="shifted").changed
    assert db_state(engine) == before
    # Shifting back to the document's own start restores the plain dates.
    report = run_import(engine, seed, slug="shifted", shift_to=date(2021, 7, 1))
    assert report.date_shift_days == 0 and report.updated["task"] == 19
    assert dates_of(engine, campaign_id(engine, "shifted")) == plain


def test_two_campaigns_in_one_database(engine: Engine, seed: SeedDoc) -> None:
    run_import(engine, seed)
    run_import(engine, seed, slug="other-district", shift_to=date(2024, 1, 1))
    a, b = campaign_id(engine), campaign_id(engine, "other-district")
    assert a != b and count(engine, Campaign) == 2
    for cid in (a, b):
        assert count(engine, Task, Task.campaign_id == cid) == 19
        assert count(engine, Unit, Unit.campaign_id == cid) == 17
        assert count(engine, ScoreItem, ScoreItem.campaign_id == cid) == 30
    with read_only(engine) as s:
        # Every link stays inside its own campaign.
        rows = s.exec(select(Assignment, Unit).join(Unit, Assignment.unit_id == Unit.id)).all()
        assert rows and all(x.campaign_id == u.campaign_id for x, u in rows)
        links = s.exec(select(ItemUnit, ScoreItem, Unit)
                       .join(ScoreItem, ItemUnit.item_id == ScoreItem.id)
                       .join(Unit, ItemUnit.unit_id == Unit.id)).all()
        assert links and all(i.campaign_id == u.campaign_id for _, i, u in links)
        b_rows = {t.__name__: sorted(str(r.model_dump()) for r in s.exec(
            select(t).where(t.campaign_id == b))) for t in (Task, Unit, ScoreItem, Criterion)}

    def edit(d: dict[str, Any]) -> None:
        d["tasks"][0]["title"] += "（改）"

    run_import(engine, doctored(edit))  # re-import campaign a only
    with read_only(engine) as s:
        assert {t.__name__: sorted(str(r.model_dump()) for r in s.exec(
            select(t).where(t.campaign_id == b))) for t in (Task, Unit, ScoreItem, Criterion)
                } == b_rows


def test_findings_serialise(seed: SeedDoc) -> None:
    f = check_seed(seed)[0]
    assert isinstance(f, Finding)
    assert json.loads(json.dumps(f.to_dict(), ensure_ascii=False))["code"] == f.code


def test_a_renamed_unit_keeps_its_row(engine: Engine, seed: SeedDoc) -> None:
    run_import(engine, seed)
    cid = campaign_id(engine)
    with read_only(engine) as s:
        old_id = s.exec(select(Unit.id).where(Unit.campaign_id == cid,
                                              Unit.name == "区农林水务局")).one()

    def rename(d: dict[str, Any]) -> None:
        unit = next(u for u in d["units"] if u["name"] == "区农林水务局")
        unit["name"] = "区农业农村局"
        unit["aliases"].append("区农林水务局")  # tasks and items still say 区农林水务局

    report = run_import(engine, doctored(rename))
    assert report.updated["unit"] == 1 and report.added["unit"] == 0 and not report.stale
    assert report.retired["assignment"] == 0
    with read_only(engine) as s:
        row = s.get(Unit, old_id)
        assert row is not None and row.name == "区农业农村局"


def test_plan_start_without_a_first_phase_start(seed: SeedDoc) -> None:
    def no_start(d: dict[str, Any]) -> None:
        d["phases"][0]["start"] = None

    doc = doctored(no_start)
    assert plan_start(doc) == date(2021, 7, 1)  # the document's date
    assert [f.code for f in check_seed(doc) if f.code.startswith("phase")] == ["phase_no_start"]
