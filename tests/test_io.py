"""Durable JSONL: malformed lines are named, a torn tail (crash mid-write) is tolerated and
repaired, atomic writes never leave half files."""

from __future__ import annotations

import json

import pytest

from prada.errors import DataError
from prada.io import JsonlAppender, read_json, read_jsonl, write_json_atomic


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
