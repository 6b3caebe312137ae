"""Reading what people type: percentages, task numbers, criterion references, dates.

Pure functions; every refusal is an :class:`~models.errors.InvalidInput` with a
Chinese message that says what to type instead. Full-width digits and signs
(“６０％”) are normalised first (NFKC).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from models.errors import InvalidInput

MAX_NOTE_CHARS = 500
MAX_REASON_CHARS = 500
DONE_WORDS = frozenset(
    {"完成", "已完成", "完成了", "已经完成", "全部完成", "已全部完成", "完工", "已办结", "办结", "done"}
)
CLAIM_WORDS = frozenset({"完成", "已完成", "达标", "已达标", "已经达标", "达到", "已达到", "符合", "已符合", "申报", "申报达标",
                         "done"})
_TRAILING_PUNCT = "。.!！~～、，, "
_PERCENT_SIGNS = "%％"


@dataclass(frozen=True, slots=True)
class Done:
    """“完成” — the unit hands the assignment in."""


@dataclass(frozen=True, slots=True)
class Progress:
    """“进度 60%” — a new percentage, with an optional note after it."""

    percent: int
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """Any other text: a progress note; the percentage stays."""

    text: str


Report = Done | Progress | Note


def normalize(text: str) -> str:
    """NFKC (full-width → half-width), collapse whitespace, strip."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text or "")).strip()


def _bare(text: str) -> str:
    return text.strip(_TRAILING_PUNCT).lower()


def parse_percent(raw: str) -> int:
    """“60”, “60%”, “６０％” → 60; anything else, or outside 0–100, is refused."""
    text = normalize(raw).rstrip(_PERCENT_SIGNS).strip()
    if not re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
        raise InvalidInput(f"进度“{raw.strip()[:20]}”不是数字。请写 0–100 的整数，例如：进度 60%")
    if "." in text:
        raise InvalidInput("进度请写整数（0–100），例如：进度 60%")
    value = int(text)
    if not 0 <= value <= 100:
        raise InvalidInput(f"进度必须在 0–100 之间（收到 {value}%）。")
    return value


_CJK = r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]"
_FULL_WIDTH = {",": "，", ":": "：", ";": "；", "(": "（", ")": "）", "!": "！", "?": "？"}


def chinese_punctuation(text: str) -> str:
    """ASCII ``, : ; ( ) ! ?`` beside Chinese characters back to their full-width forms (what the
    official wrote before the parser's NFKC, or should have): ``说明:已设立(第二稿)`` → ``说明：已设立（第二稿）``."""
    def full(m: re.Match[str]) -> str:
        return _FULL_WIDTH[m.group(0)]

    out = re.sub(rf"(?<={_CJK})[,:;!?()]|[,:;!?()](?={_CJK})", full, text)
    # A bracket closes the way it opened: “（第二稿)” → “（第二稿）”.
    return re.sub(r"（([^（）()]*)\)", r"（\1）", out)


def check_note(text: str | None, *, what: str = "说明") -> str | None:
    """Trim a free-text note; refuse overlong ones. NUL is dropped (PostgreSQL text cannot hold it);
    punctuation beside Chinese is full-width; a leading “说明：” is the label, not the note."""
    text = chinese_punctuation((text or "").replace("\x00", "").strip())
    text = re.sub(r"^(说明|备注)\s*[：:]\s*", "", text).strip()
    if not text:
        return None
    if len(text) > MAX_NOTE_CHARS:
        raise InvalidInput(f"{what}太长（{len(text)} 字），请控制在 {MAX_NOTE_CHARS} 字以内。")
    return text


def check_reason(text: str | None) -> str:
    """A return/reject reason: required, not overlong (NUL dropped, as in notes)."""
    reason = (text or "").replace("\x00", "").strip()
    if not reason:
        raise InvalidInput("请写明退回原因（直接回复那条提示消息即可）。")
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInput(f"原因太长（{len(reason)} 字），请控制在 {MAX_REASON_CHARS} 字以内。")
    return reason


#: “已完成80%”, “完成了 80 %”, “已经完成约80%，…”: a percentage (the sign is required: “完成3项整改” is a note).
_DONE_PERCENT = re.compile(r"^(?:已经|已)?完成了?\s*[:：]?\s*(?:约|近|了)?\s*([+-]?\d+(?:\.\d+)?)\s*%\s*[,，;；。]?\s*(.*)$")
_PREFIXED = re.compile(r"^(?:当前)?(?:进度|进展|完成度|完成比例)\s*[:：]?\s*(?:为|是|达到)?\s*(\S+?)(?:\s+|[,，;；。]|$)(.*)$")
_PLAIN = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*[%％]\s*[,，;；。]?\s*(.*)$")


def parse_report(raw: str) -> Report:
    """What a liaison's reply means: done, a new percentage, or a note."""
    text = normalize(raw)
    if not text:
        raise InvalidInput("回复内容是空的。可以回复“完成”、“进度 60%”或一句进展说明。")
    if _bare(text) in DONE_WORDS:
        return Done()
    m = _DONE_PERCENT.match(text)
    if m:
        return Progress(parse_percent(m.group(1)), check_note(m.group(2)))
    m = _PREFIXED.match(text)
    if m:
        percent_text, rest = m.group(1), m.group(2)
        if not re.search(r"[\d%％]", percent_text) and re.search(r"[\u4e00-\u9fff]", percent_text):
            return Note(check_note(raw) or text)  # “进度顺利，下周提交”: words, not a number
        # “进度60%，下周提交”: the number may run into the note
        inner = re.match(r"^([+-]?[\d.]+)\s*[%％]?\s*[,，;；。]?\s*(.*)$", percent_text)
        if inner and inner.group(2):
            percent_text, rest = inner.group(1), f"{inner.group(2)} {rest}".strip()
        return Progress(parse_percent(percent_text), check_note(rest))
    m = _PLAIN.match(text)
    if m:
        return Progress(parse_percent(m.group(1)), check_note(m.group(2)))
    if re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
        return Progress(parse_percent(text))
    return Note(check_note(raw) or text)


def is_claim(raw: str) -> bool:
    """Whether a reply to a criterion means “we meet it” (with or without a note after it)."""
    return parse_claim(raw) is not None


@dataclass(frozen=True, slots=True)
class Claim:
    """“达标，区质量发展委员会已于11月成立”: the unit meets the criterion; the rest is the note."""

    note: str | None = None


#: A claim word, then punctuation or a space, then the note (“达到要求” is no claim: the word
#: must stand apart from what follows).
_CLAIM_WITH_NOTE = re.compile(
    r"^(已经达标|已达标|达标|已经符合|已符合|符合|已达到|达到|申报达标)\s*(?:[,，。.;；:：!！、]+\s*|\s+)(\S.*)$"
)


def parse_claim(raw: str) -> Claim | None:
    """A reply to a criterion card that claims it: “达标”, “已达标。…”, “符合 …”; else None."""
    text = normalize(raw)
    if _bare(text) in CLAIM_WORDS:
        return Claim()
    m = _CLAIM_WITH_NOTE.match(text)
    if m is None:
        return None
    return Claim(check_note(m.group(2)))


def parse_task_no(raw: str | None, *, usage: str) -> int:
    """“7”, “任务7”, “#7”, “第7项” → 7."""
    text = normalize(raw or "")
    m = re.fullmatch(r"(?:任务|第)?\s*#?\s*(\d{1,4})\s*(?:项|号)?", text)
    if not m:
        if not text:
            raise InvalidInput(f"缺少任务号。用法：{usage}")
        raise InvalidInput(f"“{text[:20]}”不是任务号（应为数字）。用法：{usage}")
    return int(m.group(1))


def parse_item_no(raw: str | None, *, usage: str) -> int:
    """“8”, “第8项” → 8."""
    text = normalize(raw or "")
    m = re.fullmatch(r"(?:评分项|第)?\s*#?\s*(\d{1,4})\s*(?:项|号)?", text)
    if not m:
        if not text:
            raise InvalidInput(f"缺少评分项编号。用法：{usage}")
        raise InvalidInput(f"“{text[:20]}”不是评分项编号（应为数字）。用法：{usage}")
    return int(m.group(1))


def parse_criterion_ref(raw: str | None, *, usage: str) -> tuple[int, int]:
    """“8.1”, “8-1”, “８．１” → (8, 1): score item 8, criterion 1."""
    text = normalize(raw or "")
    m = re.fullmatch(r"(\d{1,4})\s*[.\-_/。·]\s*(\d{1,3})", text)
    if not m:
        if not text:
            raise InvalidInput(f"缺少细则编号。用法：{usage}")
        raise InvalidInput(f"“{text[:20]}”不是细则编号，应写成“评分项.细则”，例如 8.1。用法：{usage}")
    return int(m.group(1)), int(m.group(2))


def parse_date(raw: str | None, *, usage: str, today: date | None = None) -> date:
    """“2021-12-31”, “2021/12/31”, “2021年12月31日” → a date; with ``today``, “3月15日” too
    (the next 3月15日 on or after today: officials leave the year out when it goes without saying)."""
    text = normalize(raw or "")
    m = re.fullmatch(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?", text)
    short_form = re.fullmatch(r"(\d{1,2})\s*月\s*(\d{1,2})\s*日?", text) if today is not None else None
    if not m and not short_form:
        raise InvalidInput(f"日期格式不对，请写成 2027年3月15日（或 YYYY-MM-DD），例如 2021-12-31。用法：{usage}")
    try:
        if short_form and today is not None:
            month, day = int(short_form.group(1)), int(short_form.group(2))
            guess = date(today.year, month, day)
            return guess if guess >= today else date(today.year + 1, month, day)
        assert m is not None
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise InvalidInput(f"没有这一天：{text}。") from None
