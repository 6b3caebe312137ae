"""How the product words things in Chinese: dates, points, sizes, names. The ONE home of these helpers.

Every message, report and document formats through here (the domain's error texts too, which is
why it sits at the ``models`` level). The rules:

* A date is ``2026年12月2日`` (:func:`full_date`) or, where the year goes without saying,
  ``12月2日`` (:func:`month_day`); :func:`day` chooses by the year of "today". Never ``2026-12-02``
  in text meant for people.
* A moment is ``12月2日 09:30`` in the campaign's time zone (:func:`when`).
* Points are ``1.5``, ``2`` (:func:`points`), followed by 分 in the text.
* Text a person typed is HTML-escaped (:func:`esc`) before it goes into a message (parse mode HTML).

The glossary (one word for one thing, one style; ``tests/test_wording.py`` scans every Chinese
string of the product for the variants in :data:`FORBIDDEN`):

* people: 协调员 (never 协调人), 联络员, 领导 (:data:`COORDINATOR`, :data:`LIAISON`, :data:`LEADER`);
* phases: 第一阶段 … 第四阶段 (:func:`phase_name`; never 第2阶段);
* points: 已失分 (never a bare 已失), 待审核;
* quotes: “” (:func:`quoted`; never 「」); Chinese punctuation after Chinese text: ``：`` and
  ``，`` (never ASCII ``:`` or ``,`` right after a Chinese character);
* dates as above; never ``12月2日（2026年）``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import date, datetime, tzinfo

from models.scoring import format_points
from models.tables import Member

# ------------------------------------------------------------------ the glossary

COORDINATOR = "协调员"
LIAISON = "联络员"
LEADER = "领导"
#: Points a unit can no longer get (a criterion rejected, a deadline missed).
LOST = "已失分"
#: Handed in, waiting for the coordinator.
PENDING = "待审核"
#: The variants the product never says: (pattern, what to say instead). Checked over every
#: Chinese string of the product by ``tests/test_wording.py``.
FORBIDDEN: tuple[tuple[str, str], ...] = (
    (r"协调人", "协调员"),
    (r"第[0-9]+阶段", "第一阶段 … 第四阶段（phase_name）"),
    (r"[「」]", "“”（quoted）"),
    (r"已失(?![分效])", "已失分（已失效 is another word）"),
    (r"\d{4}-\d{1,2}-\d{1,2}", "2026年12月2日 或 12月2日（full_date / day）"),
    (r"日\s*（\d{4}年）", "2026年12月2日（full_date）"),
    (r"[\u4e00-\u9fff][:,]", "中文冒号“：”、逗号“，”"),
)
_CN_DIGITS = "零一二三四五六七八九"


def cn_number(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 20 → 二十 (0–99; digits beyond)."""
    if not 0 <= n <= 99:
        return str(n)
    if n < 10:
        return _CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    return (_CN_DIGITS[tens] if tens > 1 else "") + "十" + (_CN_DIGITS[ones] if ones else "")


def phase_name(no: int) -> str:
    """``第二阶段``: a phase by its number, in Chinese numerals."""
    return f"第{cn_number(no)}阶段"


def quoted(text: str) -> str:
    """“text”: the one quotation style (the caller escapes ``text`` for HTML when needed)."""
    return f"“{text}”"


WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
#: Said where a date is unknown.
NO_DATE = "未定"


def esc(text: object) -> str:
    """HTML-escape text before it goes into a message (parse mode HTML everywhere)."""
    return html.escape(str(text), quote=False)


def plain(html_text: str) -> str:
    """What an HTML message reads as (tags dropped, entities resolved, spaces collapsed)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", html_text or "")).split())


def short(text: str | None, limit: int = 40) -> str:
    """One line of at most ``limit`` characters (before escaping), ``…`` where cut."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def full_date(d: date | None, *, weekday: bool = False) -> str:
    """``2026年12月2日`` (``（周三）`` after it with ``weekday``); ``未定`` for no date."""
    if d is None:
        return NO_DATE
    text = f"{d.year}年{d.month}月{d.day}日"
    return text + f"（{WEEKDAYS[d.weekday()]}）" if weekday else text


def month_day(d: date | None, *, weekday: bool = False) -> str:
    """``12月2日`` (the year goes without saying); ``未定`` for no date."""
    if d is None:
        return NO_DATE
    text = f"{d.month}月{d.day}日"
    return text + f"（{WEEKDAYS[d.weekday()]}）" if weekday else text


def day(d: date | None, today: date | None = None, *, weekday: bool = False) -> str:
    """``12月2日`` in ``today``'s year, ``2027年1月5日`` in another (or with no ``today``)."""
    if d is not None and today is not None and d.year == today.year:
        return month_day(d, weekday=weekday)
    return full_date(d, weekday=weekday)


def item_due(deadline: date | None, basis: str, today: date | None = None, *, brief: bool = False) -> str:
    """A score item's deadline as every card says it (``basis``: ``models.status.DeadlineBasis``).

    Stated: ``2022年4月1日``; 全过程: ``全过程（至2022年4月1日验收）``; none in the document:
    ``2022年4月1日（文件未规定时限，以验收阶段结束为准）``. ``brief`` for one-line lists:
    ``4月1日``, ``全过程（至4月1日）``, ``4月1日（按验收阶段结束）``.
    """
    d = day(deadline, today) if brief or today is not None else full_date(deadline)
    if deadline is None or basis == "stated":
        return d
    if basis == "whole_process":
        return f"全过程（至{d}）" if brief else f"全过程（至{d}验收）"
    return f"{d}（按验收阶段结束）" if brief else f"{d}（文件未规定时限，以验收阶段结束为准）"


def when(moment: datetime, tz: tzinfo) -> str:
    """A moment as people read it in the campaign's zone: ``12月2日 09:30``."""
    local = moment.astimezone(tz)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def points(x: float) -> str:
    """Points without a needless ``.0``: ``1.5``, ``2``."""
    return format_points(x)


def size(n: int) -> str:
    """A file size: ``1.2 MB``, ``35 KB``."""
    return f"{n / (1024 * 1024):.1f} MB" if n >= 100 * 1024 else f"{max(1, n // 1024)} KB"


def member_name(member: Member) -> str:
    """What a member is called: their name, else ``@username``, else 联络员."""
    return member.display_name or (f"@{member.username}" if member.username else "联络员")


def mention(member: Member) -> str:
    """A member's name that notifies them (a ``tg://user`` link), escaped."""
    return f'<a href="tg://user?id={member.telegram_user_id}">{esc(member_name(member))}</a>'


def calendar_gap(years: Sequence[int]) -> str:
    """The warning that ``years`` have no official holiday arrangement (State Council) on record.

    Said on /status, to the coordinators once, and by ``qcbot calendar show``.
    """
    named = "、".join(f"{y}年" for y in years)
    files = "、".join(f"data/calendar/{y}.toml" for y in years)
    return (f"⚠️ {named}的法定节假日和调休安排尚未收录：目前按法定节假日（不含调休）计算工作日。"
            f"国务院公布安排后，请运维人员更新 chinesecalendar 或在 {files} 中填写。")
