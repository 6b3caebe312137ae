"""Evidence files: checks before download, content-addressed storage, metadata rows.

A file is stored once under ``storage.dir`` by the sha256 of its bytes
(``ab/abcdef…``); the :class:`~models.tables.Evidence` row keeps what it is
about, who handed it in and a safe display name. Checks happen before the
download (declared size and type) and after it (real size, magic bytes), and
each refusal is a clear Chinese :class:`~models.errors.InvalidInput`.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from models.audit import Actor, record, snapshot
from models.errors import Conflict, InvalidInput, NotFound
from models.tables import Evidence, EvidenceState

MAX_CAPTION_CHARS = 1000
MAX_NAME_CHARS = 120
EVIDENCE_FIELDS = ("state", "review_reason")

#: What users read for each accepted type.
TYPE_LABELS: dict[str, str] = {
    "application/pdf": "PDF",
    "image/jpeg": "JPG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "application/msword": "Word",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word",
    "application/vnd.ms-excel": "Excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel",
    "application/vnd.ms-powerpoint": "PPT",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "PPT",
    "application/zip": "ZIP",
    "text/plain": "TXT",
}

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/msword": (_OLE,),
    "application/vnd.ms-excel": (_OLE,),
    "application/vnd.ms-powerpoint": (_OLE,),
    "application/zip": _ZIP,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _ZIP,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _ZIP,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _ZIP,
}
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f}"


def allowed_labels(allowed: Iterable[str]) -> str:
    seen: list[str] = []
    for mime in allowed:
        label = TYPE_LABELS.get(mime, mime)
        if label not in seen:
            seen.append(label)
    return "、".join(seen)


def effective_mime(mime_type: str | None, file_name: str | None) -> str | None:
    """The declared MIME type, else the one the file name suggests."""
    if mime_type and mime_type != "application/octet-stream":
        return mime_type.split(";")[0].strip().lower()
    if file_name:
        guessed, _ = mimetypes.guess_type(file_name, strict=False)
        if guessed:
            return guessed
    return mime_type


def check_upload(
    *,
    size: int | None,
    mime_type: str | None,
    file_name: str | None,
    max_mb: int,
    allowed_types: Iterable[str],
) -> str:
    """Refuse a file before downloading it; returns its effective MIME type.

    ``size`` is Telegram's ``file_size`` (may be unknown: checked again after download).
    """
    limit = max_mb * 1024 * 1024
    if size is not None and size > limit:
        raise InvalidInput(
            f"文件太大（{_mb(size)} MB），超过 {max_mb} MB 上限。请压缩或拆分后重新发送。"
        )
    if size == 0:
        raise InvalidInput("文件是空的，请重新发送。")
    allowed = tuple(allowed_types)
    mime = effective_mime(mime_type, file_name)
    if mime not in allowed:
        raise InvalidInput(
            f"不支持这种文件类型（{mime or '未知'}）。可以上传：{allowed_labels(allowed)}。"
        )
    return mime


def check_content(data: bytes, *, mime_type: str, max_mb: int) -> None:
    """After download: the real size and, where it has one, the magic number."""
    if len(data) > max_mb * 1024 * 1024:
        raise InvalidInput(f"文件太大（{_mb(len(data))} MB），超过 {max_mb} MB 上限。")
    if not data:
        raise InvalidInput("文件是空的，请重新发送。")
    magic = _MAGIC.get(mime_type)
    if magic and not any(data.startswith(m) for m in magic):
        raise InvalidInput("文件内容与类型不符（可能已损坏或扩展名不对），请检查后重新发送。")
    if mime_type == "image/webp" and not (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        raise InvalidInput("文件内容与类型不符（可能已损坏或扩展名不对），请检查后重新发送。")
    if mime_type == "text/plain" and b"\x00" in data[:4096]:
        raise InvalidInput("这不是文本文件，请检查后重新发送。")


def safe_file_name(name: str | None, *, fallback: str) -> str:
    """A display/file name without paths, control or reserved characters, ≤ 120 chars."""
    text = unicodedata.normalize("NFKC", name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = _UNSAFE.sub("_", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    if not text:
        text = fallback
    if len(text) > MAX_NAME_CHARS:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            text = stem[: MAX_NAME_CHARS - len(ext) - 1] + "." + ext
        else:
            text = text[:MAX_NAME_CHARS]
    return text


def blob_path(storage_dir: Path, sha256: str) -> Path:
    """Where the bytes with this digest live."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"not a sha256 digest: {sha256!r}")
    return Path(storage_dir) / sha256[:2] / sha256


def store_blob(storage_dir: Path, data: bytes) -> tuple[str, Path]:
    """Store ``data`` content-addressed (atomically, once); returns (sha256, path)."""
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(storage_dir, digest)
    if path.exists() and path.stat().st_size == len(data):
        return digest, path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest, path


def add_evidence(
    session: Session,
    *,
    campaign_id: int,
    unit_id: int | None,
    member_id: int | None,
    sha256: str,
    size: int,
    mime_type: str | None,
    original_name: str | None,
    actor: Actor,
    now: datetime,
    task_id: int | None = None,
    item_id: int | None = None,
    criterion_id: int | None = None,
    caption: str | None = None,
    telegram_file_id: str | None = None,
    telegram_file_unique_id: str | None = None,
) -> Evidence:
    """The metadata row of a stored file (the bytes are already under storage.dir)."""
    if task_id is None and item_id is None and criterion_id is None:
        raise InvalidInput("证明材料必须对应一项任务或评分细则。")
    if caption and len(caption) > MAX_CAPTION_CHARS:
        raise InvalidInput(f"说明文字太长（{len(caption)} 字），请控制在 {MAX_CAPTION_CHARS} 字以内。")
    ext = mimetypes.guess_extension(mime_type or "") or ""
    row = Evidence(
        campaign_id=campaign_id, task_id=task_id, item_id=item_id, criterion_id=criterion_id,
        unit_id=unit_id, member_id=member_id, sha256=sha256, size=size, mime_type=mime_type,
        file_name=safe_file_name(original_name, fallback=f"证明材料{ext}"),
        original_name=(original_name or None) and original_name[:1024], caption=caption,
        telegram_file_id=telegram_file_id, telegram_file_unique_id=telegram_file_unique_id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    record(
        session=session, actor=actor, action="evidence.add", entity="evidence",
        entity_id=row.id, at=now, campaign_id=campaign_id,
        after=snapshot(row, ("task_id", "item_id", "criterion_id", "unit_id", "sha256", "size",
                             "mime_type", "file_name", "state")),
    )
    return row


def pending_evidence(session: Session, *, campaign_id: int) -> list[Evidence]:
    """Evidence waiting for the coordinator's review, oldest first."""
    return list(
        session.exec(
            select(Evidence)
            .where(Evidence.campaign_id == campaign_id, Evidence.state == EvidenceState.submitted)
            .order_by(col(Evidence.created_at), col(Evidence.id))
        )
    )


def _reviewable(session: Session, evidence_id: int, campaign_id: int | None) -> Evidence:
    row = session.get(Evidence, evidence_id)
    if row is None or (campaign_id is not None and row.campaign_id != campaign_id):
        raise NotFound(f"没有找到证明材料 #{evidence_id}。")
    if row.state != EvidenceState.submitted:
        raise Conflict("这份证明材料已经审核过或已撤回，无需重复操作。")
    return row


def accept_evidence(
    session: Session, *, evidence_id: int, actor: Actor, now: datetime,
    campaign_id: int | None = None,
) -> Evidence:
    """The coordinator accepts a submitted file."""
    row = _reviewable(session, evidence_id, campaign_id)
    before = snapshot(row, EVIDENCE_FIELDS)
    row.state = EvidenceState.accepted
    row.review_reason = None
    session.flush()
    record(
        session=session, actor=actor, action="evidence.accept", entity="evidence",
        entity_id=row.id, at=now, campaign_id=row.campaign_id, before=before,
        after=snapshot(row, EVIDENCE_FIELDS),
    )
    return row


def return_evidence(
    session: Session, *, evidence_id: int, reason: str, actor: Actor, now: datetime,
    campaign_id: int | None = None,
) -> Evidence:
    """The coordinator sends a submitted file back, with a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("请写明退回原因。")
    if len(reason) > MAX_CAPTION_CHARS:
        raise InvalidInput(f"退回原因太长，请控制在 {MAX_CAPTION_CHARS} 字以内。")
    row = _reviewable(session, evidence_id, campaign_id)
    before = snapshot(row, EVIDENCE_FIELDS)
    row.state = EvidenceState.returned
    row.review_reason = reason
    session.flush()
    record(
        session=session, actor=actor, action="evidence.return", entity="evidence",
        entity_id=row.id, at=now, campaign_id=row.campaign_id, before=before,
        after=snapshot(row, EVIDENCE_FIELDS),
    )
    return row
