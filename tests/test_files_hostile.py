"""Hostile files through the real stack: what reaches the dossier assessors open on Windows.

A file's name must end in an allowed extension (nothing a click runs), its bytes must be of that
type (``filetype``), Unicode format characters are stripped from every name, every limit that
needs no bytes is checked before the download, a refused file leaves nothing in the store, and a
unit has a storage quota.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from sqlmodel import select

from infra.config import Settings
from models.evidence import extension, safe_file_name, sniff, visible
from models.tables import Evidence
from tests.fuzzing import settle
from tests.harness import Harness, make_settings

PDF = b"%PDF-1.4\n" + b"0" * 2048 + b"\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 2048
RLO, ZWSP = "\u202e", "\u200b"
QUOTA_MB = 1


@pytest.fixture
def bot_settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url=db_url, storage_dir=tmp_path / "evidence", storage={"unit_quota_mb": QUOTA_MB})


async def _prompt(h: Harness) -> tuple[object, object, dict]:
    coord = await h.coordinator()
    group = await h.bound_group(coord)
    li = await h.liaison("李四", "区财政局", coordinator=coord)
    [prompt] = await h.say(li, group, "/evidence 7")
    return li, group, prompt


def _stored(h: Harness) -> list[Path]:
    root = h.settings.storage.dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _rows(h: Harness) -> int:
    with h.db() as s:
        return len(s.exec(select(Evidence.id)).all())


async def test_a_bat_with_a_bidi_name_is_refused_before_the_download(harness: Harness) -> None:
    h = harness
    li, group, prompt = await _prompt(h)
    name = f"会议通知{RLO}txt.bat"  # shown by Telegram as "会议通知tab.txt"
    [no] = await h.send_file(li, group, name, b"@echo off\r\nformat c:\r\n", reply_to=prompt, mime_type="text/plain")
    assert "不支持这种文件类型" in no["text"] and ".bat" in no["text"]
    assert RLO not in no["text"]
    assert not h.api.calls_to("getFile") and not _stored(h) and _rows(h) == 0


@pytest.mark.parametrize("name", ["setup.exe", "说明.hta", "首页.html", "清理.ps1", "图.svg", "宏.docm"])
async def test_runnable_and_scriptable_files_are_refused(harness: Harness, name: str) -> None:
    h = harness
    li, group, prompt = await _prompt(h)
    [no] = await h.send_file(li, group, name, b"payload", reply_to=prompt, mime_type="application/pdf")
    assert "不支持这种文件类型" in no["text"], no["text"]
    assert not _stored(h) and _rows(h) == 0


async def test_an_exe_declared_as_pdf_is_refused_and_leaves_no_file(harness: Harness) -> None:
    h = harness
    li, group, prompt = await _prompt(h)
    [no] = await h.send_file(li, group, "自查报告.pdf", EXE, reply_to=prompt, mime_type="application/pdf")
    assert "内容与类型不符" in no["text"]
    assert h.api.calls_to("getFile")  # the bytes had to be read to know
    assert not _stored(h) and _rows(h) == 0


async def test_a_zip_holding_a_program_is_refused(harness: Harness) -> None:
    h = harness
    li, group, prompt = await _prompt(h)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("材料/方案.pdf", PDF)
        z.writestr("材料/打开我.exe", EXE)
    [no] = await h.send_file(li, group, "材料.zip", buf.getvalue(), reply_to=prompt, mime_type="application/zip")
    assert "可执行" in no["text"] and "打开我.exe" in no["text"]
    assert not _stored(h) and _rows(h) == 0


async def test_a_long_caption_is_refused_before_the_download(harness: Harness) -> None:
    h = harness
    li, group, prompt = await _prompt(h)
    [no] = await h.send_file(li, group, "方案.pdf", PDF, reply_to=prompt, mime_type="application/pdf",
                             caption="很" * 1001)
    assert "文件说明太长" in no["text"]
    assert not h.api.calls_to("getFile") and not _stored(h) and _rows(h) == 0


async def test_a_good_file_keeps_a_clean_name(harness: Harness) -> None:
    h = harness
    li, group, prompt = await _prompt(h)
    [ok] = await h.send_file(li, group, f"实施{ZWSP}方案{RLO}.pdf", PDF, reply_to=prompt, mime_type="application/pdf")
    assert "已收到" in ok["text"] and "《实施方案.pdf》" in ok["text"], ok["text"]
    with h.db() as s:
        ev = s.exec(select(Evidence)).one()
        assert ev.file_name == "实施方案.pdf" and ev.original_name == "实施方案.pdf"
        assert ev.mime_type == "application/pdf"
    assert len(_stored(h)) == 1


async def test_a_unit_over_its_quota_gets_one_clear_line(harness: Harness) -> None:
    h = harness
    li, group, prompt = await _prompt(h)
    big = b"%PDF-1.4\n" + b"1" * (700 * 1024)
    [ok] = await h.send_file(li, group, "第一份.pdf", big, reply_to=prompt, mime_type="application/pdf")
    assert "已收到" in ok["text"]
    other = b"%PDF-1.4\n" + b"2" * (700 * 1024)
    [no] = await h.send_file(li, group, "第二份.pdf", other, reply_to=prompt, mime_type="application/pdf")
    assert "区财政局的证明材料已占用" in no["text"] and f"{QUOTA_MB} MB 的上限" in no["text"], no["text"]
    assert len(_stored(h)) == 1 and _rows(h) == 1


def test_names_lose_their_format_characters_and_their_real_ending_shows() -> None:
    assert visible(f"会议通知{RLO}txt.bat") == "会议通知txt.bat"
    assert extension(f"会议通知{RLO}txt.bat") == ".bat"
    assert extension("报告.PDF. ") == ".pdf"
    assert extension("无扩展名") == "" and extension(".bashrc") == ""
    assert safe_file_name(f"a{ZWSP}b\ufeff.pdf", fallback="x") == "ab.pdf"


def test_sniffing_tells_what_the_bytes_are() -> None:
    assert sniff(PDF) == "application/pdf"
    assert sniff(EXE) not in (None, "application/pdf")
    assert sniff("自查报告：已完成。".encode("gb18030")) == "text/plain"
    assert sniff(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512) == "application/x-ole-storage"


async def test_review_in_a_group_posts_no_file_a_liaison_sent_privately(harness: Harness) -> None:
    h = harness
    coord = await h.coordinator()
    group = await h.bound_group(coord)
    li = await h.liaison("李四", "区财政局", coordinator=coord)
    [prompt] = await h.say(li, li, "/evidence 7")  # in private
    [ok] = await h.send_file(li, li, "内部方案.pdf", PDF, reply_to=prompt, mime_type="application/pdf")
    assert "已收到" in ok["text"]
    before = len(h.api.calls_to("sendDocument"))
    cards = await h.say(coord, group, "/review", count=2)
    assert any("私聊中发送 /review 查看" in (m.get("text") or "") for m in cards)
    await settle(h.api, h.app)
    assert len(h.api.calls_to("sendDocument")) == before  # nothing re-posted to the group
    await h.say(coord, coord, "/review", count=2)
    await settle(h.api, h.app)
    sent = [c for c in h.api.calls_to("sendDocument")[before:] if c.ok]
    assert [c.params["chat_id"] for c in sent] == [coord.id]  # shown to the coordinator in private
