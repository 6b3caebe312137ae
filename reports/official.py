"""The 通报 and the 月报 as official documents (DOCX, python-docx), printable as they are.

The layout follows GB/T 9704 (党政机关公文格式) as far as a generated document can: A4, margins
top 37 mm, bottom 35 mm, left 28 mm, right 26 mm; the title in 小标宋/黑体 二号 (22 pt), centred;
主送 and 正文 in 仿宋 三号 (16 pt); numbered sections (一、二、…) in 黑体; the ranking as a
table; the 落款 (issuing office) and the date right-aligned at the end. Fonts are named for
East Asian text (``w:eastAsia``) so Word and WPS use 仿宋/黑体 where installed.
"""

from __future__ import annotations

import io
import re
from typing import Any

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docx.text.run import Run

from models.wording import full_date, points
from reports.supervision import VERDICT_WORDS, BulletinData, MonthlyData, rate_text, signature

FANGSONG = "仿宋_GB2312"
HEITI = "黑体"
TITLE_FONT = "方正小标宋简体"
BODY_PT = 16  # 三号
TITLE_PT = 22  # 二号
TABLE_PT = 12  # 小四


#: Characters XML (and so Word) cannot hold; typed text may carry them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _font(run: Run, name: str, size: float, *, bold: bool = False) -> None:
    run.font.name = name
    run.font.size = Pt(size)
    run.font.bold = bold
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(fonts)
    for attr in ("w:eastAsia", "w:ascii", "w:hAnsi"):
        fonts.set(qn(attr), name)


def _new_document() -> Any:
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)
    return doc


def _para(doc: Any, text: str, *, font: str = FANGSONG, size: float = BODY_PT, bold: bool = False,
          align: WD_ALIGN_PARAGRAPH | None = None, indent: bool = True) -> None:
    p = doc.add_paragraph()
    if align is not None:
        p.alignment = align
    if indent and align is None:
        p.paragraph_format.first_line_indent = Pt(size * 2)
    p.paragraph_format.line_spacing = Pt(28)
    _font(p.add_run(_clean(text)), font, size, bold=bold)


def _title(doc: Any, text: str) -> None:
    _para(doc, text, font=TITLE_FONT, size=TITLE_PT, align=WD_ALIGN_PARAGRAPH.CENTER)
    _para(doc, "", indent=False)


def _table(doc: Any, header: list[str], rows: list[list[str]]) -> None:
    table = doc.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
        _font(cell.paragraphs[0].add_run(text), HEITI, TABLE_PT)
    for row in rows:
        cells = table.add_row().cells
        for cell, text in zip(cells, row, strict=True):
            cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
            _font(cell.paragraphs[0].add_run(_clean(text)), FANGSONG, TABLE_PT)


def _signature(doc: Any, when: str, district: str) -> None:
    _para(doc, "", indent=False)
    _para(doc, signature(district), align=WD_ALIGN_PARAGRAPH.RIGHT)
    _para(doc, when, align=WD_ALIGN_PARAGRAPH.RIGHT)


def _bytes(doc: Any) -> bytes:
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


#: The ranking table's columns (the 通报's and the ledger's 考核 sheet's).
RANK_HEADER = ["名次", "单位", "按时完成率", "逾期项数", "待争取分值", "退回次数", "未办结批示/督办单"]


def bulletin_docx(data: BulletinData) -> bytes:
    """The 通报 as an official document (see the module)."""
    doc = _new_document()
    _title(doc, f"{data.title}\n（第{data.issue}期）")
    _para(doc, "各责任单位：", indent=False)
    _para(doc, f"现将截至{full_date(data.today)}各单位质量强区工作任务完成情况通报如下。")
    _para(doc, "一、总体情况", font=HEITI)
    delta = "" if data.score_before is None else f"，上期为{points(data.score_before)}分"
    _para(doc, f"目前评分表已核定得分{points(data.score)}分{delta}。")
    _para(doc, "二、各单位按时完成情况", font=HEITI)
    _para(doc, "排名按按时完成率从高到低，按时完成率相同的按逾期项数从少到多，再按待争取分值从少到多；三项均相同的并列。")
    _table(doc, RANK_HEADER, [
        [str(r.rank) if r.rank is not None else "—", r.name, rate_text(r), str(r.overdue),
         points(r.points_at_stake), str(r.returns), f"{r.open_instructions}/{r.open_supervisions}"]
        for r in data.records])
    _para(doc, "三、排名情况", font=HEITI)
    _para(doc, "排名靠前的单位：" + ("、".join(r.name for r in data.best) or "无") + "。")
    _para(doc, "排名靠后的单位：" + ("、".join(r.name for r in data.worst) or "无") + "。")
    names = {r.unit_id: r.name for r in data.records}
    for verdict, word in VERDICT_WORDS.items():
        chosen = [names[u] for u, v in data.verdicts.items() if v == verdict and u in names]
        if chosen:
            _para(doc, f"对{'、'.join(chosen)}予以{word}。")
    _para(doc, "四、未办结的批示和督办单", font=HEITI)
    if data.open_items:
        for n, it in enumerate(data.open_items, start=1):
            _para(doc, f"{n}. {it.kind}{it.label}（{it.units}）：{it.state}，答复期限{full_date(it.due)}。")
    else:
        _para(doc, "无。")
    _para(doc, "请排名靠后的单位对照任务分工，明确专人，加快推进，按期报送进展和证明材料。")
    _signature(doc, full_date(data.today), data.district)
    return _bytes(doc)


def monthly_docx(data: MonthlyData) -> bytes:
    """The 月报 as an official document."""
    doc = _new_document()
    _title(doc, data.title)
    _para(doc, "区领导：", indent=False)
    _para(doc, "一、得分情况", font=HEITI)
    ago = "上月无记录" if data.score_month_ago is None else f"上月为{points(data.score_month_ago)}分"
    _para(doc, f"目前已核定得分{points(data.score)}分，{ago}。")
    _para(doc, "二、上月以来审核通过的任务", font=HEITI)
    _para(doc, "、".join(data.completed) + "。" if data.completed else "无。")
    _para(doc, "三、进度滞后的单位", font=HEITI)
    _para(doc, "、".join(f"{r.name}（按时完成率{rate_text(r)}，逾期{r.overdue}项）" for r in data.lagging) + "。"
          if data.lagging else "无。")
    _para(doc, "四、本月到期的任务", font=HEITI)
    for d in data.due_next or ["无"]:
        _para(doc, d + "。")
    _signature(doc, full_date(data.today), data.district)
    return _bytes(doc)
