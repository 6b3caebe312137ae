"""Files on disk: atomic writes and the content-addressed evidence store.

A file is written under a temporary name in its own directory, fsynced and renamed into
place, so a reader (or a crash) never sees half a file. Evidence bytes live once each,
named by their sha256 (``storage_dir/ab/abcdef…``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


@contextmanager
def atomic_writer(path: Path, *, prefix: str | None = None) -> Iterator[BinaryIO]:
    """Open a binary file that replaces ``path`` in one rename when the block ends.

    The bytes are fsynced before the rename; if the block raises, ``path`` is untouched
    and the temporary file is removed. The file is readable by its owner only (0600, from
    :func:`tempfile.mkstemp`), and a directory made for it 0700: evidence, exports and
    backups hold personal data.
    """
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix or f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically."""
    with atomic_writer(path) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)


def blob_path(storage_dir: Path, sha256: str) -> Path:
    """Where the bytes with this digest live."""
    if not _SHA256_RE.fullmatch(sha256):
        raise ValueError(f"not a sha256 digest: {sha256!r}")
    return Path(storage_dir) / sha256[:2] / sha256


def store_new_blob(storage_dir: Path, data: bytes) -> tuple[str, Path | None]:
    """:func:`store_blob`, saying which file it created (None when the bytes were there already),
    so a caller whose record then fails can remove exactly what it added."""
    digest = hashlib.sha256(data).hexdigest()
    existed = blob_path(storage_dir, digest).exists()
    _, path = store_blob(storage_dir, data)
    return digest, None if existed else path


def store_blob(storage_dir: Path, data: bytes) -> tuple[str, Path]:
    """Store ``data`` content-addressed (atomically, once); returns (sha256, path)."""
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(storage_dir, digest)
    if path.exists() and path.stat().st_size == len(data):
        return digest, path
    with atomic_writer(path, prefix=".incoming-") as fh:
        fh.write(data)
    return digest, path
