"""Cache, keys, prompts and back-off: the small parts."""

from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from teacher_helpers import TRIGGER, arith_examples

from prada.errors import TeacherError
from prada.teacher.backends import Request, Result, Sampling, Usage
from prada.teacher.backends.openai_backend import OpenAIBackend, parse_retry_after
from prada.teacher.cache import TeacherCache, sample_key
from prada.teacher.prompts import PromptBuilder, clean_rationale, normalise_rationale

EX = arith_examples(1)[0]
GREEDY = Sampling(0.0, 1.0, 16)
HOT = Sampling(0.7, 1.0, 16)


@pytest.mark.parametrize("module", [
    "prada.teacher", "prada.teacher.prompts", "prada.teacher.cache", "prada.teacher.generate",
    "prada.teacher.backends", "prada.teacher.backends.openai_backend",
])
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0


def test_key_depends_on_everything_that_matters() -> None:
    base = sample_key("openai", "m", "P", HOT, 1, 1)
    assert base == sample_key("openai", "m", "P", HOT, 1, 1)
    variants = [
        sample_key("hf", "m", "P", HOT, 1, 1), sample_key("openai", "m2", "P", HOT, 1, 1),
        sample_key("openai", "m", "P2", HOT, 1, 1), sample_key("openai", "m", "P", Sampling(0.8, 1.0, 16), 1, 1),
        sample_key("openai", "m", "P", Sampling(0.7, 1.0, 17), 1, 1), sample_key("openai", "m", "P", HOT, 2, 1),
        sample_key("openai", "m", "P", HOT, 1, 2), sample_key("openai", "m", ({"role": "user", "content": "P"},), HOT, 1, 1),
    ]
    assert base not in variants and len(set(variants)) == len(variants)


def _result(i: int, ok: bool = True) -> Result:
    req = Request("rationale", EX, f"P{i}", HOT, (i,), (f"key{i}",), (i,))
    if not ok:
        return Result.failure(req, "HTTP 500")
    return Result(req, [f"text {i}"], ["stop"], Usage(3, 5))


def test_cache_roundtrip_errors_and_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    with TeacherCache(path) as cache:
        for i in range(3):
            cache.add(_result(i), "openai", "m")
        cache.add(_result(3, ok=False), "openai", "m")
    with path.open("a") as f:
        f.write('{"v": 1, "status": "ok", "samples": [{"key": "key9", "te')  # torn by a crash
    cache = TeacherCache(path)
    assert set(cache.samples) == {"key0", "key1", "key2"}  # the error record and the torn line do not count
    assert cache.get("key1").text == "text 1"
    assert cache.usage() == {"requests": 4, "failed_requests": 1, "prompt_tokens": 9, "completion_tokens": 15}
    with cache:  # reopening cuts the torn tail before appending
        cache.add(_result(3), "openai", "m")
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(line) for line in lines)
    assert "key3" in TeacherCache(path)


def test_cache_rejects_foreign_records(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(TeacherError, match="not a teacher cache record"):
        TeacherCache(path)


def test_prompts_zero_shot_and_chat() -> None:
    p = PromptBuilder("zero_shot_cot", TRIGGER)
    assert p.rationale_prompt("Q1") == "Q: Q1\nA: Let's think step by step."
    assert p.answer_prompt("Q1", " r.") == f"Q: Q1\nA: Let's think step by step. r. \n{TRIGGER}"
    assert p.answer_completion(" 5.") == f"{TRIGGER} 5."
    c = PromptBuilder("zero_shot_cot", "\n" + TRIGGER, chat=True)
    assert c.rationale_prompt("Q1") == ({"role": "user", "content": "Q: Q1\nA: Let's think step by step."},)
    assert c.answer_prompt("Q1", " r.")[1:] == ({"role": "assistant", "content": "r."}, {"role": "user", "content": TRIGGER})
    assert c.answer_completion("5") == f"{TRIGGER} 5"


def test_prompts_few_shot(data_dir: Path) -> None:
    from prada.teacher.prompts import load_few_shot_exemplars

    ex = load_few_shot_exemplars(data_dir, "singleeq")  # filed as single_eq
    p = PromptBuilder("few_shot_cot", TRIGGER, exemplars=ex)
    prompt = p.rationale_prompt("How many?")
    assert prompt.startswith("Q: There are 15 trees") and prompt.endswith("The answer is 8.\nQ: How many?\nA:")
    assert p.stop == ("\nQ:",)
    assert p.inline_answer(" 2 + 3 = 5. The answer is 5.") == "The answer is 5."
    assert p.inline_answer(" 2 + 3 = 5.") is None
    assert clean_rationale(" 5. The answer is 5.\nQ: next", "few_shot_cot") == "5. The answer is 5."
    with pytest.raises(TeacherError, match="available"):
        load_few_shot_exemplars(data_dir, "tracking_shuffled_objects")


@given(st.text(alphabet=" \n\tab", max_size=20))
@settings(max_examples=50, deadline=None)
def test_rationale_normalisation_ignores_whitespace(text: str) -> None:
    assert normalise_rationale(text) == normalise_rationale("  " + text.replace(" ", "\n ") + "\t")


def test_backoff_is_full_jitter_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    b = OpenAIBackend("m", base_url="http://127.0.0.1:1/v1", backoff_base_s=0.1, backoff_max_s=1.0)
    for attempt in range(1, 10):
        delays = [b._backoff(attempt, None) for _ in range(50)]
        cap = min(1.0, 0.1 * 2 ** (attempt - 1))
        assert all(0 <= d <= cap for d in delays) and max(delays) > cap / 4
    assert b._backoff(3, 7.5) == 7.5  # Retry-After wins


def test_retry_after_http_date() -> None:
    from email.utils import formatdate

    assert parse_retry_after({"retry-after": formatdate(1_000_030, usegmt=True)}, now=1_000_000) == pytest.approx(30)
    assert parse_retry_after({"retry-after": "garbage"}) is None
    assert parse_retry_after({"retry-after": "-5"}) == 0.0


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ({"status": "ok", "samples": [{"key": "k", "text": "t"}], "usage": {"prompt_tokens": "many"}},
         "usage.prompt_tokens 'many' is not a token count"),
        ({"status": "ok", "samples": [{"key": "k", "text": ["t"]}]}, "a sample's 'text' is list, not str"),
        ({"status": "ok", "samples": ["k"]}, "'samples' must be a list of objects"),
        ({"status": "ok", "samples": [], "usage": [1, 2]}, "'usage' must be an object"),
        ({"status": "ok", "samples": [{"key": 5, "text": "t"}]}, "a sample's 'key' is int, not str"),
    ],
)
def test_a_cache_record_with_a_wrongly_typed_field_names_its_line(tmp_path: Path, record, fragment) -> None:
    path = tmp_path / "cache.jsonl"
    good = {"v": 1, "status": "ok", "samples": [{"key": "a", "text": "x"}], "usage": {"prompt_tokens": 1}}
    path.write_text(json.dumps(good) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(TeacherError) as e:
        TeacherCache(path)
    message = str(e.value)
    assert f"cache.jsonl:2: not a teacher cache record ({fragment})" in message and "delete that line" in message
