"""A checkpoint folder is untrusted input: it never decides that code may run, and a damaged file in
it is one ``CheckpointError`` naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from student_helpers import make_student

from prada.config import StudentConfig
from prada.errors import CheckpointError
from prada.student.checkpoint_meta import parse_checkpoint_meta
from prada.student.student import CHECKPOINT_FILE, Student, load_student, read_checkpoint_meta

EVIL_TOKENIZER = '''
import pathlib
pathlib.Path({marker!r}).write_text("code from the checkpoint ran")
from transformers import PreTrainedTokenizerFast


class EvilTokenizer(PreTrainedTokenizerFast):
    pass
'''


def _checkpoint(student_cfg: StudentConfig, tmp_path: Path, backbone: str = "frozen", prompt: bool = True) -> Path:
    student = make_student(student_cfg, backbone, prompt=prompt)
    return student.save_checkpoint(tmp_path / "ckpt", method="prada" if prompt else "ft_cot", step=3)


def _plant_remote_code(path: Path, marker: Path) -> None:
    """What a hostile checkpoint does: ask for trust in its own metadata, and map its tokenizer to
    a module shipped beside it."""
    meta = json.loads((path / CHECKPOINT_FILE).read_text())
    meta["student"]["trust_remote_code"] = True
    (path / CHECKPOINT_FILE).write_text(json.dumps(meta))
    config_file = path / "tokenizer" / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["auto_map"] = {"AutoTokenizer": [None, "evil.EvilTokenizer"]}
    config["tokenizer_class"] = "EvilTokenizer"
    config_file.write_text(json.dumps(config))
    (path / "tokenizer" / "evil.py").write_text(EVIL_TOKENIZER.format(marker=str(marker)))


def test_a_checkpoint_cannot_grant_itself_trust_remote_code(student_cfg, tmp_path):
    path = _checkpoint(student_cfg, tmp_path)
    marker = tmp_path / "pwned"
    _plant_remote_code(path, marker)
    for load in (lambda: Student.from_checkpoint(path), lambda: load_student(path, student_cfg)):
        with pytest.raises(CheckpointError) as e:
            load()
        assert not marker.exists()
        message = str(e.value)
        assert "tokenizer_config.json: refused: this checkpoint ships its own code" in message
        assert "student.trust_remote_code: true in your own config" in message


def test_trust_remote_code_is_the_callers_whatever_the_checkpoint_says(student_cfg, tmp_path):
    path = _checkpoint(student_cfg, tmp_path)
    meta = read_checkpoint_meta(path)
    for saved in (True, False):
        meta["student"]["trust_remote_code"] = saved
        for caller in (True, False):
            spec = parse_checkpoint_meta(meta, path, trust_remote_code=caller)
            assert spec.student.trust_remote_code is caller
    loaded = Student.from_checkpoint(path)
    assert loaded.student_cfg.trust_remote_code is False


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m: m.update(backbone="huge"), "backbone 'huge' is not one of ['frozen', 'lora', 'full']"),
        (lambda m: m.update(step="7"), "step '7' is not a count of steps"),
        (lambda m: m["student"].update(model=5), "student.model: expected a string, got 5"),
        (lambda m: m["student"].update(run_this="x"), "unknown key 'student.run_this'"),
        (lambda m: m.update(prompt_encoder=[1, 2]), "prompt_encoder: expected a mapping"),
    ],
)
def test_an_edited_checkpoint_meta_is_refused_field_by_field(student_cfg, tmp_path, edit, fragment):
    path = _checkpoint(student_cfg, tmp_path)
    meta = json.loads((path / CHECKPOINT_FILE).read_text())
    edit(meta)
    (path / CHECKPOINT_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as e:
        Student.from_checkpoint(path)
    assert fragment in str(e.value) and "prada_checkpoint.json: not a usable prada checkpoint" in str(e.value)


@pytest.mark.parametrize(("backbone", "prompt", "damaged"),
                         [("full", False, "backbone/model.safetensors"), ("frozen", True, "prompt_encoder.safetensors"),
                          ("frozen", True, CHECKPOINT_FILE)])
def test_a_truncated_file_is_one_error_naming_the_checkpoint(student_cfg, tmp_path, backbone, prompt, damaged):
    path = _checkpoint(student_cfg, tmp_path, backbone, prompt)
    file = path / damaged
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError) as e:
        Student.from_checkpoint(path)
    message = str(e.value)
    assert str(path) in message and "damaged" in message and "\n" not in message
