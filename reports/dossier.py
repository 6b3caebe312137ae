"""The evidence dossier (材料包): the ledger's files in ZIP volumes, each complete, each under a limit.

One folder per score item and per task, the ledger workbook as the index in every volume. Names
inside the ZIP come from our own data (numbers, unit names, the safe file name kept on the
evidence row), sanitised again and made unique; the bytes come from the content-addressed store by
sha256. Nothing a user typed ever becomes a path on our file system.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from infra.files import blob_path
from models.errors import InvalidInput, NotFound
from models.wording import full_date
from reports.ledger import DEFAULT_PART_BYTES, Ledger, ledger_file_name, ledger_xlsx_bytes

#: Types already compressed: stored as they are (deflating them costs time, gains nothing).
_STORED_TYPES = {
    "image/jpeg", "image/png", "image/webp", "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
# Local header (30) + data descriptor (24) + central entry (46) + room for extras.
_ENTRY_OVERHEAD = 30 + 24 + 46 + 64
_END_RECORD = 22 + 56 + 20  # end of central directory (+ zip64 records, to be safe)


def _entry_bound(name: str, size: int, stored: bool) -> int:
    n = len(name.encode("utf-8"))
    # Deflate never grows data by more than 5 bytes per 16 KiB block (+ a few).
    data = size if stored else size + 5 * (size // 16384 + 1) + 16
    return _ENTRY_OVERHEAD + 2 * n + data


@dataclass(frozen=True, slots=True)
class DossierResult:
    """The ZIP volumes written (each a complete archive) and what they hold."""

    paths: tuple[Path, ...]
    file_count: int
    total_bytes: int

    @property
    def split(self) -> bool:
        return len(self.paths) > 1


class _Volume:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.zf = zipfile.ZipFile(self.fh, "w", compression=zipfile.ZIP_DEFLATED,
                                  compresslevel=6, allowZip64=True)
        self.count = 0

    def add(self, name: str, data: bytes, stored: bool, when: datetime | None) -> None:
        info = zipfile.ZipInfo(name, date_time=(when.timetuple()[:6] if when else (2021, 1, 1, 0, 0, 0)))
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        self.zf.writestr(info, data)
        self.count += 1

    def folder(self, name: str, when: datetime | None) -> None:
        info = zipfile.ZipInfo(name.rstrip("/") + "/",
                               date_time=(when.timetuple()[:6] if when else (2021, 1, 1, 0, 0, 0)))
        info.external_attr = (0o40755 << 16) | 0x10
        self.zf.writestr(info, b"")

    def close(self) -> None:
        self.zf.close()
        self.fh.close()


def part_path(base: Path, index: int, total: int) -> Path:
    """``X.zip`` for a single volume; ``X_第1部分（共3部分）.zip`` for parts."""
    if total <= 1:
        return base.with_suffix(".zip")
    return base.with_name(f"{base.stem}_第{index}部分（共{total}部分）.zip")


def write_dossier(
    ledger: Ledger,
    *,
    storage_dir: Path,
    out: Path,
    part_limit: int | None = DEFAULT_PART_BYTES,
) -> DossierResult:
    """Write the dossier ZIP(s) next to ``out`` (its suffix becomes .zip).

    Every volume holds the ledger workbook (the index) and a share of the
    evidence files, in the dossier's order; each is a valid ZIP of at most
    ``part_limit`` bytes (None: one archive, however large).
    """
    index = ledger_xlsx_bytes(ledger)
    index_name = ledger_file_name(ledger)
    readme = _readme(ledger).encode("utf-8")
    fixed = [(index_name, index, False), ("说明.txt", readme, False)]
    # No empty folder: an item or task without material holds a note saying so (in every volume,
    # so that each shows the whole structure).
    filled = {f.arcname.rsplit("/", 1)[0] for f in ledger.files}
    fixed += [(f"{name}/{NO_MATERIAL}", NO_MATERIAL_TEXT.encode("utf-8"), False)
              for name in ledger.folders if name not in filled]
    fixed_bound = sum(_entry_bound(n, len(d), s) for n, d, s in fixed) + _END_RECORD
    entries: list[tuple[str, Path, int, bool, datetime | None]] = []
    for f in ledger.files:
        ev = f.evidence
        path = blob_path(storage_dir, ev.sha256)
        if not path.is_file():
            raise NotFound(f"证明材料 #{ev.id}（{ev.file_name}）的文件不在存储目录中，无法打包。")
        entries.append((f.arcname, path, path.stat().st_size, (ev.mime_type or "") in _STORED_TYPES,
                        ev.created_at.astimezone(ledger.tz) if ev.created_at else None))
    if part_limit is not None:
        biggest = max((_entry_bound(n, s, st) for n, _, s, st, _ in entries), default=0)
        if fixed_bound + biggest > part_limit:
            raise InvalidInput(
                f"分卷上限 {part_limit / 1e6:.1f} MB 太小：最大的一份材料加上台账就有 "
                f"{(fixed_bound + biggest) / 1e6:.1f} MB。请调大分卷上限。"
            )
    # Plan the volumes by bounds first, so each part's name can say how many there are.
    plan: list[list[int]] = [[]]
    used = fixed_bound
    for i, (name, _, size, stored, _) in enumerate(entries):
        need = _entry_bound(name, size, stored)
        if part_limit is not None and plan[-1] and used + need > part_limit:
            plan.append([])
            used = fixed_bound
        plan[-1].append(i)
        used += need
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in (part_path(out, 1, 1), *out.parent.glob(f"{out.stem}_第*部分（共*部分）.zip")):
        stale.unlink(missing_ok=True)
    paths: list[Path] = []
    total = len(plan)
    for k, chunk in enumerate(plan, start=1):
        vol = _Volume(part_path(out, k, total))
        try:
            stamp = ledger.generated_at.astimezone(ledger.tz)
            for name, data, stored in fixed:
                vol.add(name, data, stored, stamp)
            for i in chunk:
                name, path, _, stored, when = entries[i]
                vol.add(name, path.read_bytes(), stored, when)
        finally:
            vol.close()
        if part_limit is not None and vol.path.stat().st_size > part_limit:  # pragma: no cover
            raise RuntimeError(f"{vol.path.name} exceeds {part_limit} bytes")
        paths.append(vol.path)
    return DossierResult(paths=tuple(paths), file_count=len(entries),
                         total_bytes=sum(p.stat().st_size for p in paths))


#: In the folder of an item or task that has no material yet (a ZIP shows no empty folder).
NO_MATERIAL = "暂无材料.txt"
NO_MATERIAL_TEXT = "本评分项（任务）目前没有已提交的证明材料。\r\n"


def _readme(ledger: Ledger) -> str:
    c = ledger.campaign
    lines = [
        f"{c.name} 创建验收证明材料",
        f"依据：{c.doc_number or ''} {c.doc_title or ''}".rstrip(),
        f"统计日期：{full_date(ledger.today)}　导出时间：{ledger.local(ledger.generated_at)}",
        "",
        f"《{ledger_file_name(ledger)}》是本材料包的索引：“自评表”按评分表顺序列出每项得分和证明材料，",
        "“材料清单”列出每份材料的来源、上传人、时间和 SHA-256 校验值。",
        "文件夹“01_组织保障”等对应评分表的评分项，“任务01_…”对应“六个一”任务；",
        "文件名为“责任单位_任务或细则_提交日期_原文件名”；没有材料的评分项和任务，文件夹里放有“暂无材料.txt”。",
        "材料较多时分为几个压缩包，每个都可单独解压，均附有完整台账。",
    ]
    return "\r\n".join(lines) + "\r\n"
