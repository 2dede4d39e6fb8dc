"""Small, careful file helpers shared by every stage.

- ``read_jsonl`` names the file and line of any malformed record, and can tolerate a torn last line
  (a process killed mid-write) without hiding corruption elsewhere.
- ``append_jsonl`` flushes and fsyncs, so a completed record survives a crash.
- ``write_json_atomic`` writes to a temporary file and renames, so readers never see half a file.
  Files are created like ``open(path, "w")`` would create them (0666 less the umask: usually 0644),
  and temporary folders like ``mkdir`` (0777 less the umask), not ``tempfile``'s private 0600/0700:
  results are meant to be shared.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prada.errors import DataError, RunDirError

logger = logging.getLogger(__name__)


def iter_jsonl(path: str | Path, *, tolerate_torn_tail: bool = False) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-empty line of ``path``.

    Raises ``DataError`` naming ``path:line`` for malformed JSON or a non-object line. With
    ``tolerate_torn_tail`` a malformed *last* line that does not end in a newline (the signature of
    a write interrupted by a crash) is skipped with a warning instead.
    """
    for _, record in iter_jsonl_numbered(path, tolerate_torn_tail=tolerate_torn_tail):
        yield record


def iter_jsonl_numbered(path: str | Path, *, tolerate_torn_tail: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for each record of ``path`` (see ``iter_jsonl``), so that a reader
    checking the records' fields can name the line of a bad one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with path.open("rb") as f:
        lines = f.read().split(b"\n")
    # After split, a file ending in "\n" has an empty last element; otherwise the last element is
    # a line without its newline: possibly torn.
    ends_with_newline = lines[-1] == b""
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        is_last = lineno == len(lines)
        try:
            record = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if tolerate_torn_tail and is_last and not ends_with_newline:
                logger.warning("%s:%d: ignoring a torn last line (interrupted write)", path, lineno)
                return
            raise DataError(f"{path}:{lineno}: malformed JSON ({e})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
        yield lineno, record


def read_jsonl(path: str | Path, *, tolerate_torn_tail: bool = False) -> list[dict[str, Any]]:
    """All records of a JSONL file (see ``iter_jsonl``)."""
    return list(iter_jsonl(path, tolerate_torn_tail=tolerate_torn_tail))


def read_json(path: str | Path) -> Any:
    """Parse a JSON file, naming the file, line and column on a syntax error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                        "the file is damaged or not JSON") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}:{e.colno}: malformed JSON ({e.msg})") from None


def _repair_torn_tail(path: Path) -> None:
    """Truncate a trailing partial line so that the next append starts on a fresh line."""
    with path.open("rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        data_start = max(0, size - (1 << 20))
        f.seek(data_start)
        tail = f.read()
        cut = tail.rfind(b"\n")
        new_size = data_start + cut + 1 if cut >= 0 else 0
        f.truncate(new_size)


class JsonlAppender:
    """Append records durably: each ``write`` is one line, flushed and fsync'd.

    Opening repairs a torn last line left by a crash (it is dropped: its request is redone).
    """

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        ensure_dir(self.path.parent)
        if self.path.exists():
            _repair_torn_tail(self.path)
        self._f = self.path.open("a", encoding="utf-8")
        self._fsync = fsync

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_jsonl_atomic(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Write a whole JSONL file atomically (temp file + rename)."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    write_text_atomic(path, text)


def write_json_atomic(path: str | Path, obj: Any, *, indent: int = 2) -> None:
    """Write JSON atomically (temp file + rename)."""
    write_text_atomic(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def check_dir_possible(path: str | Path) -> Path:
    """Raise ``RunDirError`` when ``path`` or one of its parents is a file (so that ``path`` could
    never be created as a folder); checks only, creates nothing. Call it before long work."""
    path = Path(path)
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise RunDirError(f"{blocker}: is a file, but prada needs a folder there (for {path}); "
                          "choose another output path or move the file away")
    return path


def ensure_dir(path: str | Path) -> Path:
    """``mkdir -p path``; a file in the way is a ``RunDirError`` naming it (not a traceback)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        check_dir_possible(path)
        raise
    return path


_TEMP_NAME_ATTEMPTS = 100


def _temp_sibling(parent: Path, name: str) -> Path:
    return parent / f".{name}.{secrets.token_hex(6)}.tmp"


def make_temp_dir(parent: str | Path, name: str) -> Path:
    """A fresh hidden folder ``parent/.name.XXXX.tmp`` for an atomic write of ``parent/name``,
    created with the permissions of a plain ``mkdir`` (the umask applies; not mkdtemp's 0700)."""
    parent = ensure_dir(parent)
    for _ in range(_TEMP_NAME_ATTEMPTS):
        tmp = _temp_sibling(parent, name)
        try:
            tmp.mkdir(mode=0o777)
            return tmp
        except FileExistsError:
            continue
    raise RunDirError(f"{parent}: could not create a temporary folder for {name}")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write a file atomically (temporary file in the same folder, fsync, rename).

    The temporary file is opened with mode 0666 so that the umask alone decides its permissions,
    as for any file the user creates (``tempfile.mkstemp`` would make it 0600).
    """
    path = Path(path)
    if path.is_dir():
        raise RunDirError(f"{path}: is a folder, but prada needs to write a file there; move it away "
                          "or choose another output path")
    parent = ensure_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_TEMP_NAME_ATTEMPTS):
        tmp = _temp_sibling(parent, path.name)
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise RunDirError(f"{parent}: could not create a temporary file for {path.name}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(target: str | Path, *, fsync: bool = True) -> Iterator[Path]:
    """The one atomic directory write: yields a fresh temporary sibling of ``target`` to fill, then
    (``fsync``: after flushing every file to disk) renames it to ``target``, replacing an old one;
    on any error the temporary folder is removed and ``target`` is left as it was.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> with atomic_dir(root / "model") as tmp:
    ...     _ = (tmp / "weights.bin").write_bytes(b"w")
    >>> sorted(p.name for p in root.iterdir()), (root / "model" / "weights.bin").read_bytes()
    (['model'], b'w')
    """
    target = Path(target)
    tmp = make_temp_dir(target.parent, target.name)
    try:
        yield tmp
        if fsync:
            for f in tmp.rglob("*"):
                if f.is_file():
                    with open(f, "rb") as fh:
                        os.fsync(fh.fileno())
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(tmp: Path, target: Path) -> None:
    """Move the finished folder ``tmp`` to ``target``, replacing an existing one with at most a
    brief gap (readers see the old or the new folder, never a half-written one)."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
