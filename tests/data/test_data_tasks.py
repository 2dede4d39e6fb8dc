"""Registry, synthetic tasks, custom datasets and seeded splits — no data directory needed."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from prada.config import CustomTaskConfig, DataConfig
from prada.data import get_task, list_tasks
from prada.data.answers import extract_student_answer, is_correct
from prada.data.example import AnswerType, Category
from prada.data.splits import carve_validation, seeded_split
from prada.data.synthetic import SYNTH_TEST_SIZE, SYNTH_TRAIN_SIZE, SYNTHETIC_TASKS, generate
from prada.data.tasks import BUILTIN_TASKS
from prada.errors import DataError
from prada.formats import format_target

EXPECTED_META = {
    "singleeq": ("arithmetic", "number"), "addsub": ("arithmetic", "number"),
    "multiarith": ("arithmetic", "number"), "gsm8k": ("arithmetic", "number"),
    "aqua": ("arithmetic", "choice"), "svamp": ("arithmetic", "number"),
    "date_understanding": ("other", "choice"), "tracking_shuffled_objects": ("other", "choice"),
    "last_letters": ("symbolic", "string"), "coin_flip": ("symbolic", "yes_no"),
    "commonsense_qa": ("commonsense", "choice"), "strategy_qa": ("commonsense", "yes_no"),
}


def test_registry_has_the_12_datasets_with_category_type_and_trigger():
    assert set(EXPECTED_META) == set(BUILTIN_TASKS)
    for name, (category, answer_type) in EXPECTED_META.items():
        task = get_task(name)
        assert (task.category.value, task.answer_type.value) == (category, answer_type)
        assert task.trigger.startswith("Therefore,") and task.trigger.endswith(" is")
    assert get_task("multiarith").trigger == "Therefore, the answer (arabic numerals) is"
    assert get_task("date_understanding").trigger == "Therefore, among A through F, the answer is"
    assert set(SYNTHETIC_TASKS) <= set(list_tasks())


def test_unknown_task_names_the_closest_and_lists_all():
    with pytest.raises(DataError) as e:
        get_task("mulitarith")
    msg = str(e.value)
    assert "did you mean 'multiarith'" in msg and "strategy_qa" in msg and "synth_coin_flip" in msg


def test_missing_data_dir_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("PRADA_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="--data-dir.*PRADA_DATA_DIR"):
        get_task("multiarith").load("train")


def test_data_dir_without_the_files_names_the_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"raw/multiarith/MultiArith\.json: file not found"):
        get_task("multiarith").load("train", tmp_path)


# ------------------------------------------------------------------ synthetic


@pytest.mark.parametrize("name", sorted(SYNTHETIC_TASKS))
def test_synthetic_tasks_are_deterministic_sized_and_disjoint(name):
    task = get_task(name)
    train, test = task.load("train"), task.load("test")
    assert (len(train), len(test)) == (SYNTH_TRAIN_SIZE, SYNTH_TEST_SIZE)
    assert [e.question for e in train] == [e.question for e in get_task(name).load("train")]
    assert not {e.question for e in train} & {e.question for e in test}
    other_seed = get_task(name, DataConfig(seed=1)).load("train")
    assert [e.question for e in other_seed] != [e.question for e in train]
    for ex in train[:50]:
        assert ex.rationale and 10 <= len(ex.rationale.split()) <= 60
        # the gold rationale in the student format round-trips to the gold answer
        completion = format_target(ex.answer, ex.rationale)
        assert is_correct(extract_student_answer(completion, ex.answer_type), ex.answer, ex.answer_type)


def test_synthetic_answers_are_right():
    for ex in generate("synth_last_letters", "train", seed=3)[:30]:
        words = ex.question.split('"')[1].split()
        assert len(words) == 2 and ex.answer == "".join(w[-1] for w in words).lower()
        assert ex.question.startswith("Take the last letters of each word in")
    for ex in generate("synth_last_letters_long", "test", seed=3)[:30]:
        words = ex.question.split('"')[1].split()
        assert len(words) == 4 and ex.answer == "".join(w[-1] for w in words).lower()
        assert not ex.question.startswith("Take the last letters")  # worded differently
    for name, n in (("synth_coin_flip", 2), ("synth_coin_flip_long", 4)):
        answers = set()
        for ex in generate(name, "train", seed=0)[:100]:
            flips = ex.question.count(" flips the coin.")
            assert flips + ex.question.count(" does not flip the coin.") == n
            assert ex.answer == ("yes" if flips % 2 == 0 else "no")
            answers.add(ex.answer)
        assert answers == {"yes", "no"}


def test_synthetic_example_reads_like_the_brief():
    ex = generate("synth_last_letters", "train")[0]
    w1, w2 = ex.question.split('"')[1].split()
    assert ex.rationale == (f'The last letter of "{w1}" is "{w1[-1].lower()}". The last letter of '
                            f'"{w2}" is "{w2[-1].lower()}". Concatenating them is "{ex.answer}".')


# ------------------------------------------------------------------ seeded splits / val


def test_seeded_split_is_deterministic_and_independent_of_hash_seed():
    items = list(range(100))
    a = seeded_split(items, 0.3, seed=7, salt="t")
    assert a == seeded_split(items, 0.3, seed=7, salt="t")
    assert (len(a["train"]), len(a["test"])) == (70, 30)
    assert a != seeded_split(items, 0.3, seed=8, salt="t")
    code = ("from prada.data.splits import seeded_split;"
            "print(seeded_split(list(range(100)), 0.3, seed=7, salt='t')['test'])")
    outs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": h, "PATH": ""}).stdout
        for h in ("0", "12345")
    }
    assert outs == {f"{a['test']}\n"}


def test_val_split_is_carved_out_of_train():
    cfg = DataConfig(val_fraction=0.2, seed=0)
    task = get_task("synth_coin_flip", cfg)
    assert task.splits() == ("train", "val", "test")
    train, val = task.load("train"), task.load("val")
    assert (len(train), len(val)) == (400, 100)
    full = get_task("synth_coin_flip").load("train")
    assert sorted(e.id for e in train + val) == sorted(e.id for e in full)
    assert [e.id for e in val] == [e.id for e in get_task("synth_coin_flip", cfg).load("val")]
    with pytest.raises(DataError, match="no split 'val'"):
        get_task("synth_coin_flip").load("val")
    assert carve_validation([1, 2, 3], 0.0, 0, "x") == ([1, 2, 3], [])


# ------------------------------------------------------------------ custom datasets


def _custom(tmp_path, lines, **kw):
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return DataConfig(custom_tasks=[CustomTaskConfig(name="mine", path=str(path), **kw)])


def test_custom_jsonl_task(tmp_path):
    rows = [json.dumps({"q": f"What is {i} + 1?", "a": str(i + 1), "why": f"{i} + 1 = {i + 1}"}) + "\n"
            for i in range(20)]
    cfg = _custom(tmp_path, rows, answer_type="number", question_field="q", answer_field="a",
                  rationale_field="why", test_fraction=0.25)
    assert "mine" in list_tasks(cfg)
    task = get_task("mine", cfg)
    train, test = task.load("train"), task.load("test")
    assert (len(train), len(test)) == (15, 5)
    assert task.answer_type is AnswerType.NUMBER and task.category is Category.CUSTOM
    assert train[0].rationale and train[0].question.startswith("What is")


def test_custom_json_list_with_choices(tmp_path):
    path = tmp_path / "mc.json"
    path.write_text(json.dumps([
        {"question": "Which is a fruit?", "choices": ["rock", "pear"], "answer": "B"},
        {"question": "Which is blue?", "choices": {"A": "sky", "B": "grass"}, "answer": "sky"},
        {"question": "Which is hot?", "choices": ["ice", "fire"], "answer": "b"},
    ]))
    cfg = DataConfig(custom_tasks=[CustomTaskConfig(name="mc", path=str(path), answer_type="choice",
                                                    test_fraction=0.34)])
    examples = get_task("mc", cfg).load("train") + get_task("mc", cfg).load("test")
    by_q = {e.question.split(" Answer")[0]: e for e in examples}
    assert by_q["Which is a fruit?"].question == "Which is a fruit? Answer Choices: (A) rock (B) pear"
    assert by_q["Which is a fruit?"].choices == {"A": "rock", "B": "pear"}
    assert by_q["Which is blue?"].answer == "A"  # given as the option text
    assert by_q["Which is hot?"].answer == "B"


def test_custom_missing_field_names_file_and_line(tmp_path):
    cfg = _custom(tmp_path, ['{"question": "a?", "answer": "1"}\n', "\n", '{"question": "b?"}\n'],
                  answer_type="number")
    with pytest.raises(DataError, match=r"mine\.jsonl:3: missing field 'answer'"):
        get_task("mine", cfg).load("train")


def test_custom_malformed_json_names_file_and_line(tmp_path):
    cfg = _custom(tmp_path, ['{"question": "a?", "answer": "1"}\n', '{"question": \n'], answer_type="number")
    with pytest.raises(DataError, match=r"mine\.jsonl:2: malformed JSON"):
        get_task("mine", cfg).load("test")


def test_custom_bad_answer_type_value(tmp_path):
    cfg = _custom(tmp_path, ['{"question": "a?", "answer": "maybe"}\n'], answer_type="yes_no")
    with pytest.raises(DataError, match=r"mine\.jsonl:1: answer 'maybe' is not a valid yes_no"):
        get_task("mine", cfg).load("train")


def test_custom_task_cannot_shadow_a_builtin(tmp_path):
    cfg = DataConfig(custom_tasks=[CustomTaskConfig(name="gsm8k", path=str(tmp_path / "x.jsonl"))])
    with pytest.raises(DataError, match="shadows a built-in"):
        get_task("gsm8k", cfg)


def test_random_module_state_is_untouched():
    random.seed(123)
    before = random.random()
    random.seed(123)
    generate("synth_coin_flip", "train", seed=0)
    seeded_split(list(range(10)), 0.3, 0, "x")
    assert random.random() == before
