"""The resumable request cache: ``RUN_DIR/teacher/cache.jsonl``.

One line per *completed request* (successful or failed), appended, flushed and fsync'd by
``prada.io.JsonlAppender`` from a writer thread as soon as the request completes::

    {"v": 1, "status": "ok", "stage": "rationale", "example_id": "multiarith/17",
     "backend": "openai", "model": "m", "prompt": "...", "sampling": {...},
     "samples": [{"key": "<sha256>", "sample_index": 1, "seed": 1, "text": "...", "finish_reason": "stop"}],
     "usage": {"prompt_tokens": 40, "completion_tokens": 97}, "attempts": 1, "latency_s": 0.21,
     "error": null}

A sample's key is ``sample_key(backend, model, prompt, sampling, sample_index)``. Loading keeps the
first ``ok`` entry of every key; ``error`` records are kept for provenance and the usage tally but
never count as done, so the next run retries them. A torn last line (a write cut by a crash) is
ignored by the reader and cut off by the next writer; anything else malformed is an error naming the
line, never silently skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prada.errors import DataError, TeacherError
from prada.io import JsonlAppender, iter_jsonl_numbered
from prada.redact import redact_text
from prada.teacher.backends.base import Prompt, Result, Sampling

logger = logging.getLogger(__name__)

CACHE_VERSION = 1


def sample_key(backend: str, model: str, prompt: Prompt, sampling: Sampling, sample_index: int, seed: int | None) -> str:
    """sha256 of everything that determines one sample's text.

    Greedy samples ignore the seed (their text depends on the prompt only).

    >>> s = Sampling(temperature=0.0, top_p=1.0, max_tokens=8)
    >>> sample_key("openai", "m", "Q", s, 0, 5) == sample_key("openai", "m", "Q", s, 0, 7)
    True
    >>> len(sample_key("openai", "m", "Q", s, 0, None))
    64
    """
    payload = {
        "backend": backend,
        "model": model,
        "prompt": prompt if isinstance(prompt, str) else [dict(m) for m in prompt],
        "sampling": sampling.to_dict(),
        "sample_index": int(sample_index),
        "seed": None if sampling.greedy else seed,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedSample:
    text: str
    finish_reason: str | None
    record: dict[str, Any]
    """The whole request record it came from (prompt, sampling, usage, ...)."""


def record_problem(record: dict[str, Any]) -> str | None:
    """What is wrong with a cache line read back from disk (it may have been edited), or None."""
    if record.get("status") not in ("ok", "error"):
        return f"status {record.get('status')!r} is not 'ok' or 'error'"
    samples = record.get("samples")
    if not isinstance(samples, list) or not all(isinstance(s, dict) for s in samples):
        return "'samples' must be a list of objects"
    for s in samples:
        for key, types in (("key", (str,)), ("text", (str,)), ("finish_reason", (str, type(None))),
                           ("sample_index", (int,)), ("seed", (int, type(None)))):
            if key in s and (not isinstance(s[key], types) or isinstance(s[key], bool)):
                return f"a sample's {key!r} is {type(s[key]).__name__}, not {' or '.join(t.__name__ for t in types)}"
    usage = record.get("usage")
    if usage is not None:
        if not isinstance(usage, dict):
            return "'usage' must be an object"
        for key in ("prompt_tokens", "completion_tokens"):
            value = usage.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                return f"usage.{key} {value!r} is not a token count"
    for key in ("stage", "example_id"):
        if key in record and not isinstance(record[key], str):
            return f"{key!r} must be a string"
    return None


def result_record(result: Result, backend: str, model: str) -> dict[str, Any]:
    """The cache line of one result."""
    req = result.request
    samples = []
    for i, (index, key, seed) in enumerate(zip(req.sample_indices, req.keys, req.seeds, strict=True)):
        entry: dict[str, Any] = {"key": key, "sample_index": index, "seed": seed}
        if result.ok:
            entry["text"] = result.texts[i]
            entry["finish_reason"] = result.finish_reasons[i] if i < len(result.finish_reasons) else None
        samples.append(entry)
    return {
        "v": CACHE_VERSION,
        "status": "ok" if result.ok else "error",
        "stage": req.stage,
        "example_id": req.example.id,
        "backend": backend,
        "model": model,
        "prompt": req.prompt if isinstance(req.prompt, str) else [dict(m) for m in req.prompt],
        "sampling": req.sampling.to_dict(),
        "samples": samples,
        "usage": result.usage.to_dict(),
        "attempts": result.attempts,
        "latency_s": round(result.latency_s, 4),
        "error": redact_text(result.error) if result.error else result.error,
        **({"meta": result.meta} if result.meta else {}),
        "time": round(time.time(), 3),
    }


class TeacherCache:
    """Read side (what is done) and write side (durable appends) of ``cache.jsonl``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.samples: dict[str, CachedSample] = {}
        self.records: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._appender: JsonlAppender | None = None
        self._write_error: BaseException | None = None
        self.written = 0
        if self.path.exists():
            for record in self._read():
                self._index(record)

    # -- reading ---------------------------------------------------------------------------------
    def _read(self) -> Iterator[dict[str, Any]]:
        try:
            for lineno, record in iter_jsonl_numbered(self.path, tolerate_torn_tail=True):
                problem = record_problem(record)
                if problem:
                    raise TeacherError(
                        f"{self.path}:{lineno}: not a teacher cache record ({problem}); delete that line (its "
                        "request is asked again on the next run) or the whole file"
                    )
                yield record
        except DataError as e:  # malformed JSON in the middle: real damage, not a torn tail
            raise DataError(f"{e}; delete that line (its request is asked again on the next run) or the "
                               "whole file") from None

    def _index(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if record["status"] != "ok":
            return
        for s in record["samples"]:
            key = s.get("key")
            if key and key not in self.samples and isinstance(s.get("text"), str):
                self.samples[key] = CachedSample(s["text"], s.get("finish_reason"), record)

    def get(self, key: str) -> CachedSample | None:
        return self.samples.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.samples

    def __len__(self) -> int:
        return len(self.samples)

    # -- writing ---------------------------------------------------------------------------------
    def open(self) -> TeacherCache:
        """Start the writer (cuts a torn last line so the next append starts on a fresh line)."""
        if self._thread is None:
            self._appender = JsonlAppender(self.path)
            self._thread = threading.Thread(target=self._writer, name="teacher-cache-writer", daemon=True)
            self._thread.start()
        return self

    def _writer(self) -> None:
        assert self._appender is not None
        while True:
            record = self._queue.get()
            if record is None:
                return
            try:
                self._appender.write(record)
                self.written += 1
            except BaseException as e:  # disk full, ...: surfaced by add()/close()
                self._write_error = e
                return

    def add(self, result: Result, backend: str, model: str) -> dict[str, Any]:
        """Index a completed result and queue its durable append."""
        if self._write_error is not None:
            raise TeacherError(f"{self.path}: cannot append to the teacher cache: {self._write_error}")
        if self._thread is None:
            self.open()
        record = result_record(result, backend, model)
        self._index(record)
        self._queue.put(record)
        return record

    def close(self) -> None:
        """Wait until every queued record is on disk, then close the file."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._appender is not None:
            self._appender.close()
            self._appender = None
        if self._write_error is not None:
            err, self._write_error = self._write_error, None
            raise TeacherError(f"{self.path}: cannot append to the teacher cache: {err}")

    def __enter__(self) -> TeacherCache:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounting ------------------------------------------------------------------------------
    def usage(self) -> dict[str, int]:
        """Tokens and requests over every record (this run and earlier ones, failures included)."""
        return self.tally(self.records)

    @staticmethod
    def tally(records: list[dict[str, Any]]) -> dict[str, int]:
        """Requests, failed requests and tokens of some cache records."""
        out = {"requests": 0, "failed_requests": 0, "prompt_tokens": 0, "completion_tokens": 0}
        for r in records:
            out["requests"] += 1
            out["failed_requests"] += r["status"] != "ok"
            usage = r.get("usage") or {}
            out["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
            out["completion_tokens"] += int(usage.get("completion_tokens") or 0)
        return out
