"""Evidence files: checks before download, content-addressed storage, metadata rows.

A file is stored once under ``storage.dir`` by the sha256 of its bytes
(``ab/abcdef…``); the :class:`~models.tables.Evidence` row keeps what it is
about, who handed it in and a safe display name. Checks happen before the
download (declared size and type) and after it (real size, magic bytes), and
each refusal is a clear Chinese :class:`~models.errors.InvalidInput`.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import filetype
import sqlalchemy as sa
from sqlalchemy import or_
from sqlmodel import Session, col, func, select

from infra.files import blob_path
from models.audit import Actor, record, snapshot
from models.errors import Conflict, InvalidInput, NotFound
from models.members import check_second_reviewer
from models.permissions import Action, check
from models.tables import (
    AuditLog,
    Criterion,
    Evidence,
    EvidenceState,
    Member,
    ScoreItem,
    Task,
    Unit,
)
from models.wording import full_date

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

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the container of .doc/.xls/.ppt
_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
#: What each allowed file name ending may hold, by the type its bytes show (``sniff``). An
#: Office file is a ZIP (or an OLE container) inside, so a plain ZIP passes for one, and back.
EXTENSIONS: dict[str, tuple[str, frozenset[str]]] = {
    ".pdf": ("application/pdf", frozenset({"application/pdf"})),
    ".jpg": ("image/jpeg", frozenset({"image/jpeg"})),
    ".jpeg": ("image/jpeg", frozenset({"image/jpeg"})),
    ".png": ("image/png", frozenset({"image/png"})),
    ".webp": ("image/webp", frozenset({"image/webp"})),
    ".doc": ("application/msword", frozenset({"application/x-ole-storage"})),
    ".xls": ("application/vnd.ms-excel", frozenset({"application/x-ole-storage"})),
    ".ppt": ("application/vnd.ms-powerpoint", frozenset({"application/x-ole-storage"})),
    ".docx": (_DOCX, frozenset({_DOCX, "application/zip"})),
    ".xlsx": (_XLSX, frozenset({_XLSX, "application/zip"})),
    ".pptx": (_PPTX, frozenset({_PPTX, "application/zip"})),
    ".zip": ("application/zip", frozenset({"application/zip", _DOCX, _XLSX, _PPTX})),
    ".txt": ("text/plain", frozenset({"text/plain"})),
}
#: The ending a file of each allowed type gets when it came without a name (a photo).
EXTENSION_OF: dict[str, str] = {}
for _ext, (_mime, _) in EXTENSIONS.items():
    EXTENSION_OF.setdefault(_mime, _ext)
#: Inside a ZIP, names with these endings make it refused: nothing a click runs.
RUNNABLE = frozenset({
    ".exe", ".com", ".bat", ".cmd", ".scr", ".pif", ".msi", ".msp", ".cpl", ".dll", ".sys",
    ".hta", ".htm", ".html", ".xhtml", ".mht", ".mhtml", ".svg", ".js", ".jse", ".vbs", ".vbe",
    ".wsf", ".wsh", ".ps1", ".psm1", ".psd1", ".lnk", ".url", ".reg", ".inf", ".jar", ".sh",
    ".py", ".pl", ".rb", ".php", ".apk", ".app", ".dmg", ".iso", ".img", ".vhd", ".chm",
    ".docm", ".xlsm", ".pptm", ".dotm", ".xltm", ".potm", ".ppsm", ".xlam", ".ppam",
})
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


def visible(text: str) -> str:
    """``text`` without Unicode format characters (bidi overrides, zero-width marks, BOM):
    "会议通知" + U+202E + "txt.bat" shows as "会议通知tab.txt" but is a ``.bat``; here it is one."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def extension(name: str | None) -> str:
    """The ending that decides what a file is (lower case, with the dot), as Windows reads it."""
    clean = visible(unicodedata.normalize("NFKC", name or "")).strip().rstrip(". ")
    stem, dot, ext = clean.rpartition(".")
    return f".{ext.lower()}" if dot and stem and ext else ""


def effective_mime(mime_type: str | None, file_name: str | None) -> str | None:
    """What the file says it is: by its name's ending when it has one, else its declared type."""
    ext = extension(file_name)
    if ext:
        return EXTENSIONS[ext][0] if ext in EXTENSIONS else None
    if mime_type and mime_type != "application/octet-stream":
        return mime_type.split(";")[0].strip().lower()
    return None


def check_upload(
    *,
    size: int | None,
    mime_type: str | None,
    file_name: str | None,
    max_mb: int,
    allowed_types: Iterable[str],
) -> str:
    """Refuse a file before downloading it; returns the type it must turn out to be.

    ``size`` is Telegram's ``file_size`` (may be unknown: checked again after download). The
    name's ending must be one of :data:`EXTENSIONS` (nothing a click runs: no .exe, .bat, .hta,
    .html, .svg, .ps1 …) and agree with the declared type; the bytes are checked after download.
    """
    limit = max_mb * 1024 * 1024
    if size is not None and size > limit:
        raise InvalidInput(
            f"文件太大（{_mb(size)} MB），超过 {max_mb} MB 上限。请压缩或拆分后重新发送。"
        )
    if size == 0:
        raise InvalidInput("文件是空的，请重新发送。")
    allowed = tuple(allowed_types)
    ext = extension(file_name)
    mime = effective_mime(mime_type, file_name)
    if mime is None or mime not in allowed:
        shown = ext or (mime_type or "未知")
        raise InvalidInput(f"不支持这种文件类型（{shown}）。可以上传：{allowed_labels(allowed)}。")
    declared = (mime_type or "").split(";")[0].strip().lower()
    if ext and declared and declared not in ("application/octet-stream", mime) and not (
            declared in EXTENSIONS[ext][1] or _same_family(declared, mime)):
        raise InvalidInput(f"文件名的扩展名（{ext}）与文件类型（{declared}）不符，请检查后重新发送。")
    return mime


def _same_family(a: str, b: str) -> bool:
    """Declared types Telegram clients send for one kind of file (e.g. image/jpg, text/x-log)."""
    aliases = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-zip-compressed": "application/zip",
               "application/x-pdf": "application/pdf"}
    a, b = aliases.get(a, a), aliases.get(b, b)
    return a == b or (a.startswith("text/") and b == "text/plain")


def sniff(data: bytes) -> str | None:
    """The type the bytes show (:mod:`filetype`; the OLE container of .doc/.xls/.ppt and
    plain text by hand: they have no magic number of their own)."""
    kind = filetype.guess(data)
    if kind is not None:
        return str(kind.mime)
    if data.startswith(_OLE):
        return "application/x-ole-storage"
    head = data[:8192]
    if b"\x00" not in head:
        for encoding in ("utf-8", "gb18030"):
            try:
                head.decode(encoding)
            except UnicodeDecodeError as exc:
                if exc.start >= len(head) - 4:  # cut inside a character at the end of the sample
                    return "text/plain"
                continue
            return "text/plain"
    return None


def check_content(data: bytes, *, mime_type: str, max_mb: int) -> str:
    """After download: the real size, and the type the bytes show must be the one expected
    (an EXE "declared" as PDF is refused). Returns the type the bytes show."""
    if len(data) > max_mb * 1024 * 1024:
        raise InvalidInput(f"文件太大（{_mb(len(data))} MB），超过 {max_mb} MB 上限。")
    if not data:
        raise InvalidInput("文件是空的，请重新发送。")
    found = sniff(data)
    ext = EXTENSION_OF.get(mime_type, "")
    accepted = EXTENSIONS[ext][1] if ext else frozenset({mime_type})
    if found is None or found not in accepted:
        if mime_type == "text/plain":
            raise InvalidInput("这不是文本文件，请检查后重新发送。")
        raise InvalidInput("文件内容与类型不符（可能已损坏或扩展名不对），请检查后重新发送。")
    if found in ("application/zip", _DOCX, _XLSX, _PPTX):
        _check_zip(data)
    return found


def _check_zip(data: bytes) -> None:
    """A ZIP (or an Office file) must open, and hold nothing a click runs (nor macros)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise InvalidInput("压缩文件已损坏，无法打开，请检查后重新发送。") from None
    for name in names:
        clean = visible(name)
        if extension(clean) in RUNNABLE or clean.lower().endswith("vbaproject.bin"):
            raise InvalidInput(f"压缩文件中含有可执行或带宏的文件（{safe_file_name(clean, fallback='?')}），"
                               "不能作为证明材料。请只打包文档和图片。")


def safe_file_name(name: str | None, *, fallback: str) -> str:
    """A display/file name without paths, control, format or reserved characters, ≤ 120 chars."""
    text = visible(unicodedata.normalize("NFKC", name or ""))
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


def check_quota(session: Session, *, campaign_id: int, unit_id: int | None, size: int | None,
                quota_mb: int) -> None:
    """Refuse a file that would take the unit's stored evidence past ``quota_mb`` (0: no quota).

    Counted: every distinct file the unit handed in, withdrawn ones too (their bytes stay)."""
    if quota_mb <= 0 or unit_id is None:
        return
    used = unit_storage_bytes(session, campaign_id=campaign_id, unit_id=unit_id)
    limit = quota_mb * 1024 * 1024
    if used + (size or 0) > limit:
        unit = session.get(Unit, unit_id)
        name = unit.name if unit is not None else "本单位"
        raise InvalidInput(
            f"{name}的证明材料已占用 {_mb(used)} MB，加上这个文件将超过每个单位 {quota_mb} MB 的上限。"
            "请撤回不需要的材料（/withdraw），或请协调员调整上限。")


def blob_in_use(session: Session, sha256: str) -> bool:
    """Whether any evidence row (of any campaign, in any state) refers to these bytes."""
    return session.exec(select(Evidence.id).where(Evidence.sha256 == sha256).limit(1)).first() is not None


def unit_storage_bytes(session: Session, *, campaign_id: int, unit_id: int) -> int:
    """Bytes of the distinct files a unit handed in (the store keeps each file once)."""
    rows = session.exec(
        select(Evidence.sha256, Evidence.size)
        .where(Evidence.campaign_id == campaign_id, Evidence.unit_id == unit_id)
    ).all()
    return sum(dict(rows).values())


@dataclass(frozen=True, slots=True)
class Upload:
    """A stored file handed in as evidence: whose, for which target, and the file itself."""

    campaign_id: int
    unit_id: int | None
    member_id: int | None
    sha256: str
    size: int
    mime_type: str | None
    original_name: str | None
    task_id: int | None = None
    item_id: int | None = None
    criterion_id: int | None = None
    caption: str | None = None
    telegram_file_id: str | None = None
    telegram_file_unique_id: str | None = None
    #: The day it came in, in the campaign's time zone (a photo's name says it); None: ``now``'s date.
    received_on: date | None = None

    @property
    def target(self) -> tuple[int | None, int | None, int | None]:
        return (self.task_id, self.item_id, self.criterion_id)


PHOTO_PREFIX = "现场照片"


def photo_name(session: Session, *, campaign_id: int, unit_id: int, day: date, ext: str) -> str:
    """A name people recognise for a photo (Telegram gives photos none):
    ``现场照片_区财政局_20261202_3.jpg``, the unit's third photo of the day."""
    unit = session.get(Unit, unit_id)
    stem = f"{PHOTO_PREFIX}_{unit.name if unit is not None else '本单位'}_{day:%Y%m%d}_"
    taken = session.exec(
        select(func.count()).select_from(Evidence)
        .where(Evidence.campaign_id == campaign_id, Evidence.unit_id == unit_id,
               col(Evidence.file_name).startswith(stem, autoescape=True))
    ).one()
    return safe_file_name(f"{stem}{int(taken) + 1}{ext}", fallback=f"{PHOTO_PREFIX}{ext}")


def add_evidence(
    session: Session,
    upload: Upload,
    *,
    actor: Actor,
    now: datetime,
) -> Evidence:
    """The metadata row of a stored file (the bytes are already under storage.dir)."""
    u = upload
    if u.target == (None, None, None):
        raise InvalidInput("证明材料必须对应一项任务或评分细则。")
    caption = u.caption
    if caption and len(caption) > MAX_CAPTION_CHARS:
        raise InvalidInput(f"说明文字太长（{len(caption)} 字），请控制在 {MAX_CAPTION_CHARS} 字以内。")
    ext = EXTENSION_OF.get(u.mime_type or "", "")
    original_name = visible(u.original_name) if u.original_name else u.original_name
    fallback = f"证明材料{ext}"
    if not original_name and (u.mime_type or "").startswith("image/") and u.unit_id is not None:
        fallback = photo_name(session, campaign_id=u.campaign_id, unit_id=u.unit_id,
                              day=u.received_on or now.date(), ext=ext)
    row = Evidence(
        campaign_id=u.campaign_id, task_id=u.task_id, item_id=u.item_id, criterion_id=u.criterion_id,
        unit_id=u.unit_id, member_id=u.member_id, sha256=u.sha256, size=u.size, mime_type=u.mime_type,
        file_name=safe_file_name(original_name, fallback=fallback),
        # PostgreSQL text cannot hold NUL: what people typed keeps everything but that.
        original_name=(original_name or None) and original_name.replace("\x00", "")[:1024] or None,
        caption=caption.replace("\x00", "") if caption else caption,
        telegram_file_id=u.telegram_file_id, telegram_file_unique_id=u.telegram_file_unique_id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    record(
        session=session, actor=actor, action="evidence.add", entity="evidence",
        entity_id=row.id, at=now, campaign_id=u.campaign_id,
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


def _locked(session: Session, evidence_id: int) -> Evidence | None:
    """The row, locked and re-read: two reviews (or a review and a withdrawal) of one file
    at once run one after the other, and the second sees the first (PostgreSQL)."""
    return session.exec(select(Evidence).where(Evidence.id == evidence_id).with_for_update()
                        .execution_options(populate_existing=True)).first()


def reviewable_evidence(session: Session, *, evidence_id: int, campaign_id: int | None) -> Evidence:
    """The file, locked, if the coordinator may review it now (submitted, not withdrawn)."""
    row = _locked(session, evidence_id)
    if row is None or (campaign_id is not None and row.campaign_id != campaign_id):
        raise NotFound(f"没有找到证明材料 #{evidence_id}。")
    if row.state != EvidenceState.submitted:
        raise Conflict("这份证明材料已处理过（已审核或已撤回），本次操作未生效。")
    return row


def accept_evidence(
    session: Session, *, evidence_id: int, actor: Actor, now: datetime,
    campaign_id: int | None = None, alone_may_self_review: bool = True,
) -> Evidence:
    """The coordinator accepts a submitted file (not their own while another coordinator can)."""
    row = reviewable_evidence(session, evidence_id=evidence_id, campaign_id=campaign_id)
    check_second_reviewer(session, reviewer_member_id=actor.member_id, submitter_member_id=row.member_id,
                          campaign_id=row.campaign_id, alone_may_self_review=alone_may_self_review)
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
    row = reviewable_evidence(session, evidence_id=evidence_id, campaign_id=campaign_id)
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


# ------------------------------------------------- the same file twice; withdrawal
# (added for the evidence archive / dossier export)

#: States in which a row counts as handed in (a returned or withdrawn one does not).
ACTIVE_STATES: tuple[EvidenceState, ...] = (EvidenceState.submitted, EvidenceState.accepted)


@dataclass(frozen=True, slots=True)
class Submission:
    """What :func:`submit_evidence` did with a file.

    ``created`` is false when the very same file (same bytes) was already handed
    in for the same task / item / criterion: nothing new is stored and
    ``evidence`` is the earlier row. ``also_filed_for`` lists the other places the
    same bytes are filed; ``warning`` (Chinese, for the user) then says so.
    """

    evidence: Evidence
    created: bool
    also_filed_for: tuple[Evidence, ...] = ()
    warning: str | None = None


def target_label(
    session: Session, *, task_id: int | None, item_id: int | None, criterion_id: int | None
) -> str:
    """The task / score item / criterion an evidence row is about, as users read it."""
    if criterion_id is not None:
        crit = session.get(Criterion, criterion_id)
        item = session.get(ScoreItem, crit.item_id) if crit is not None else None
        if crit is not None and item is not None:
            return f"细则{item.no}.{crit.no}"
    if item_id is not None:
        item = session.get(ScoreItem, item_id)
        if item is not None:
            return f"评分项{item.no}（{item.subcategory}）" if item.subcategory else f"评分项{item.no}"
    if task_id is not None:
        task = session.get(Task, task_id)
        if task is not None:
            return f"任务{task.no}"
    return "其他事项"


def evidence_for(
    session: Session, *, campaign_id: int, unit_id: int | None, task_id: int | None = None,
    criterion_id: int | None = None,
) -> list[Evidence]:
    """The unit's files handed in (and not withdrawn or returned) for a task or a criterion:
    what a reviewer has in hand for its completion or its claim. For a criterion, the files
    for its whole score item count too."""
    if criterion_id is not None:
        crit = session.get(Criterion, criterion_id)
        about = or_(col(Evidence.criterion_id) == criterion_id,
                    sa.and_(col(Evidence.item_id) == (crit.item_id if crit else -1), col(Evidence.criterion_id).is_(None)))
    elif task_id is not None:
        about = col(Evidence.task_id) == task_id
    else:
        return []
    query = select(Evidence).where(Evidence.campaign_id == campaign_id, about,
                                   col(Evidence.state).in_([EvidenceState.submitted, EvidenceState.accepted]))
    if unit_id is not None:
        query = query.where(Evidence.unit_id == unit_id)
    return list(session.exec(query.order_by(col(Evidence.created_at), col(Evidence.id))))


def same_file(
    session: Session,
    *,
    campaign_id: int,
    sha256: str | None = None,
    telegram_file_unique_id: str | None = None,
    states: Iterable[EvidenceState] = ACTIVE_STATES,
) -> list[Evidence]:
    """Rows of the campaign holding the same file (by content digest or Telegram id)."""
    keys: list[sa.ColumnElement[bool]] = []
    if sha256:
        keys.append(col(Evidence.sha256) == sha256)
    if telegram_file_unique_id:
        keys.append(col(Evidence.telegram_file_unique_id) == telegram_file_unique_id)
    if not keys:
        return []
    return list(
        session.exec(
            select(Evidence)
            .where(Evidence.campaign_id == campaign_id, or_(*keys),
                   col(Evidence.state).in_(list(states)))
            .order_by(col(Evidence.created_at), col(Evidence.id))
        )
    )


def known_blob(
    session: Session, *, storage_dir: Path, campaign_id: int, telegram_file_unique_id: str | None
) -> str | None:
    """The sha256 of a file Telegram says we already have, if its bytes are stored.

    Lets the upload flow skip ``getFile`` for a file sent again (any state counts:
    the bytes of a withdrawn file are still archived).
    """
    if not telegram_file_unique_id:
        return None
    rows = same_file(session, campaign_id=campaign_id,
                     telegram_file_unique_id=telegram_file_unique_id,
                     states=tuple(EvidenceState))
    for row in rows:
        path = blob_path(storage_dir, row.sha256)
        if path.is_file() and path.stat().st_size == row.size:
            return row.sha256
    return None


def submit_evidence(
    session: Session,
    upload: Upload,
    *,
    actor: Actor,
    now: datetime,
) -> Submission:
    """:func:`add_evidence`, aware of the same file handed in before.

    Same bytes for the same target: recognised, nothing added. Same bytes for
    another target: added (the blob is shared) with a warning naming the other use.
    """
    # The same file handed in twice at once must be added once: hand-ins to one target queue
    # on its row (PostgreSQL runs the two transactions side by side; SQLite's are serial).
    u = upload
    for model, ident in ((Task, u.task_id), (ScoreItem, u.item_id), (Criterion, u.criterion_id)):
        if ident is not None:
            session.exec(select(model).where(model.id == ident).with_for_update()).first()
    earlier = same_file(session, campaign_id=u.campaign_id, sha256=u.sha256)
    here = target_label(session, task_id=u.task_id, item_id=u.item_id, criterion_id=u.criterion_id)
    # A liaison hears only of their own unit's hand-ins: another unit's (a shared task, a joint
    # document) is recorded in the audit, never named to them.
    ours = [row for row in earlier if row.unit_id == u.unit_id]
    for row in ours:
        if (row.task_id, row.item_id, row.criterion_id) == u.target:
            when = full_date(row.created_at.date())
            return Submission(
                evidence=row, created=False,
                warning=f"这份文件已于 {when} 作为{here}的证明材料提交过（#{row.id}），无需重复提交。",
            )
    row = add_evidence(session, u, actor=actor, now=now)
    if not earlier:
        return Submission(evidence=row, created=True)
    labels: list[str] = []
    for other in ours:
        label = target_label(session, task_id=other.task_id, item_id=other.item_id,
                             criterion_id=other.criterion_id)
        if label not in labels:
            labels.append(label)
    warning = (
        f"注意：这份文件已作为{'、'.join(labels)}的证明材料提交过，现同时记入{here}。"
        f"如果发错了，可以撤回（#{row.id}）。"
    ) if labels else None
    record(
        session=session, actor=actor, action="evidence.reuse", entity="evidence",
        entity_id=row.id, at=now, campaign_id=u.campaign_id,
        after={"sha256": u.sha256, "also_filed_as": [o.id for o in earlier]},
        note=warning,
    )
    return Submission(evidence=row, created=True, also_filed_for=tuple(earlier), warning=warning)


def withdraw_evidence(
    session: Session,
    *,
    evidence_id: int,
    member: Member | None,
    actor: Actor,
    now: datetime,
    campaign_id: int | None = None,
    reason: str | None = None,
) -> Evidence:
    """Withdraw an evidence row: by a liaison of its unit or a coordinator, as they are now.

    Who may is the permission table's unit work (``Action.upload_evidence`` for the file's
    unit): a former uploader who is now a leader, or of another unit, may not. The row and the
    file stay (archive and audit log); the row is marked withdrawn and leaves the ledger's
    evidence lists and the dossier.
    """
    row = _locked(session, evidence_id)
    if row is None or (campaign_id is not None and row.campaign_id != campaign_id):
        raise NotFound(f"没有找到证明材料 #{evidence_id}。")
    in_campaign = member if member is not None and member.campaign_id == row.campaign_id else None
    check(member=in_campaign, action=Action.upload_evidence,
          responsible_unit_ids=[row.unit_id] if row.unit_id is not None else [])
    if row.state == EvidenceState.withdrawn:
        raise Conflict(f"证明材料 #{evidence_id} 已经撤回过了。")
    reason = (reason or "").replace("\x00", "").strip() or None
    if reason and len(reason) > MAX_CAPTION_CHARS:
        raise InvalidInput(f"撤回原因太长，请控制在 {MAX_CAPTION_CHARS} 字以内。")
    before = snapshot(row, EVIDENCE_FIELDS + ("withdrawn_at", "withdrawn_by_member_id"))
    row.state = EvidenceState.withdrawn
    row.withdrawn_at = now
    row.withdrawn_by_member_id = member.id if member is not None else None
    session.flush()
    record(
        session=session, actor=actor, action="evidence.withdraw", entity="evidence",
        entity_id=row.id, at=now, campaign_id=row.campaign_id, before=before,
        after=snapshot(row, EVIDENCE_FIELDS + ("withdrawn_at", "withdrawn_by_member_id")),
        note=reason,
    )
    return row


# ================================================================ the store


@dataclass(frozen=True, slots=True)
class StoreCheck:
    """What ``qcbot storage check`` found in ``storage.dir``."""

    files: int
    orphans: tuple[Path, ...]  # content files no evidence row refers to
    strays: tuple[Path, ...]  # anything that is not a content file (left-over temporary files, foreign files)
    missing: tuple[str, ...]  # digests evidence rows refer to whose file is not there
    recent: int = 0  # unreferenced files younger than the grace period (an upload being recorded)

    @property
    def clean(self) -> bool:
        return not (self.orphans or self.strays or self.missing)


def check_store(session: Session, *, storage_dir: Path, now: float, grace_seconds: float = 3600) -> StoreCheck:
    """Compare the evidence store with the evidence rows (of every campaign).

    A file no row refers to that is younger than ``grace_seconds`` (by its mtime, against
    ``now``, a POSIX timestamp) is left alone: the bot stores a file's bytes just before it
    records it."""
    referenced = set(session.exec(select(Evidence.sha256).distinct()).all())
    # A plan workbook sent back waits in the store for its 确认导入 (the preview's audit row names it).
    referenced |= {str((a.after or {}).get("sha256")) for a in session.exec(
        select(AuditLog).where(AuditLog.action == "plan.preview"))}
    seen: set[str] = set()
    orphans: list[Path] = []
    strays: list[Path] = []
    count = recent = 0
    root = Path(storage_dir)
    if root.exists():
        for path in sorted(root.rglob("*")):
            if path.is_dir() and not path.is_symlink():
                continue
            count += 1
            name = path.name
            young = now - path.lstat().st_mtime < grace_seconds
            if (not path.is_symlink() and path.is_file() and path.parent.parent == root
                    and re.fullmatch(r"[0-9a-f]{64}", name) and path.parent.name == name[:2]):
                seen.add(name)
                if name not in referenced:
                    if young:
                        recent += 1
                    else:
                        orphans.append(path)
            elif young:
                recent += 1
            else:
                strays.append(path)
    missing = tuple(sorted(referenced - seen))
    return StoreCheck(files=count, orphans=tuple(orphans), strays=tuple(strays), missing=missing, recent=recent)
