"""Durable JSONL: malformed lines are named, a torn tail (crash mid-write) is tolerated and
repaired, atomic writes never leave half files."""

from __future__ import annotations

import json
import os
import stat

import pytest

from prada.errors import DataError, RunDirError
from prada.io import (
    JsonlAppender,
    make_temp_dir,
    read_json,
    read_jsonl,
    write_json_atomic,
    write_jsonl_atomic,
    write_text_atomic,
)


def test_malformed_line_is_named(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(DataError, match=r"x\.jsonl:2: malformed JSON"):
        read_jsonl(path)


def test_non_object_line_is_named(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"x\.jsonl:2: expected a JSON object"):
        read_jsonl(path)


def test_torn_tail_is_ignored_only_when_asked_and_only_at_the_end(tmp_path):
    path = tmp_path / "cache.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    assert read_jsonl(path, tolerate_torn_tail=True) == [{"a": 1}, {"a": 2}]
    with pytest.raises(DataError):
        read_jsonl(path)
    # A malformed line in the middle is corruption, not a torn tail.
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}')
    with pytest.raises(DataError, match=":2:"):
        read_jsonl(path, tolerate_torn_tail=True)


def test_appender_repairs_torn_tail_then_appends(tmp_path):
    path = tmp_path / "cache.jsonl"
    path.write_text('{"a": 1}\n{"a": 2')
    with JsonlAppender(path) as out:
        out.write({"a": 3})
    assert read_jsonl(path) == [{"a": 1}, {"a": 3}]


def test_atomic_json_write_and_read(tmp_path):
    path = tmp_path / "sub" / "m.json"
    write_json_atomic(path, {"acc": 0.5})
    assert read_json(path) == {"acc": 0.5}
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]
    path.write_text('{"acc": }')
    with pytest.raises(DataError, match=r"m\.json:1:\d+: malformed JSON"):
        read_json(path)
    assert json.loads('{"ok": true}')["ok"]


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring it afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(previous)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                             (0o002, 0o664, 0o775)])
def test_atomic_writes_respect_the_umask_like_plain_files(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    write_json_atomic(tmp_path / "metrics.json", {"acc": 1.0})
    write_jsonl_atomic(tmp_path / "corpus.jsonl", [{"a": 1}])
    write_text_atomic(tmp_path / "config.yaml", "a: 1\n")
    for name in ("metrics.json", "corpus.jsonl", "config.yaml"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == file_mode, name
    staging = make_temp_dir(tmp_path / "staging", "final")
    assert stat.S_IMODE(staging.stat().st_mode) == dir_mode
    from prada.training.checkpoint import write_dir_atomic

    target = write_dir_atomic(tmp_path / "step-2", lambda d: (d / "w.bin").write_bytes(b"x"))
    assert stat.S_IMODE(target.stat().st_mode) == dir_mode
    assert stat.S_IMODE((target / "w.bin").stat().st_mode) == file_mode
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_file_in_the_way_of_an_output_folder_is_one_clear_error(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(RunDirError, match=r"out: is a file, but prada needs a folder there"):
        write_json_atomic(tmp_path / "out" / "sub" / "metrics.json", {})
    (tmp_path / "metrics.json").mkdir()
    with pytest.raises(RunDirError, match=r"metrics.json: is a folder"):
        write_json_atomic(tmp_path / "metrics.json", {})
    assert (tmp_path / "out").read_text() == "not a folder"


def test_a_non_utf8_json_file_names_the_line(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_bytes(b'{"a": 1,\n "b": "\xff"}\n')
    with pytest.raises(DataError, match=r"metrics\.json:2: not UTF-8 text \(byte 0xff"):
        read_json(path)
