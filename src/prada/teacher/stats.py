"""The figures a diverse teacher run is judged by, from its output folder alone.

``python -m prada.teacher.stats OUT_DIR`` (``OUT_DIR`` holds ``summary.json`` and
``samples/<task>.jsonl``, as ``prada teach`` writes them; a committed folder without the cache
works) prints:

- teacher accuracy: greedy (sample 0 right, per question) and over all answered samples;
- kept rationales per question (mean, and how many questions kept 0, 1, ..., D);
- the share of distinct rationales: distinct (whitespace-normalised) rationales / answered samples,
  over all samples and over the correct ones;
- throughput: completion tokens / generation seconds and the wall time, from ``summary.json``
  (the last run's; a resumed run's earlier part is not in it, which the output says).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, cast

from prada.errors import DataError
from prada.formats import ZERO_SHOT_PROMPT
from prada.io import read_json, read_jsonl
from prada.teacher.generate import SAMPLES_DIR, SUMMARY_NAME
from prada.teacher.prompts import PromptStyle, clean_rationale, normalise_rationale


def teacher_stats(out_dir: str | Path) -> dict[str, Any]:
    """The figures above as a dict (percentages rounded to 0.01, as in summary.json)."""
    out_dir = Path(out_dir)
    summary_path = out_dir / SUMMARY_NAME
    if not summary_path.is_file():
        raise DataError(f"{summary_path}: not found; give the folder a teacher run wrote (prada teach --out)")
    summary = read_json(summary_path)
    samples_path = out_dir / SAMPLES_DIR / f"{summary['task']}.jsonl"
    if not samples_path.is_file():
        raise DataError(f"{samples_path}: not found (teacher runs before samples/ existed: re-run the same "
                        "`prada teach` command; every request is cached, so it only rewrites the files)")
    records = read_jsonl(samples_path)
    d = int(summary["samples_per_question"])
    by_question: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        by_question[str(rec["example_id"])].append(rec)
    n_q = int(summary["questions"])
    style = cast("PromptStyle", str(summary.get("prompt", ZERO_SHOT_PROMPT)))

    def distinct(recs: list[dict[str, Any]]) -> int:
        return len({normalise_rationale(clean_rationale(str(r["rationale"]), style)) for r in recs})

    kept_per_q = Counter(sum(bool(r.get("kept")) for r in rs) for rs in by_question.values())
    kept_per_q[0] += n_q - len(by_question)  # questions without any answered sample kept nothing
    correct = [r for r in records if r.get("correct")]
    run = summary.get("this_run", {})
    generation_s = run.get("generation_s")
    return {
        "task": summary["task"],
        "teacher": f"{summary['backend']} / {summary['model']}",
        "questions": n_q,
        "samples_per_question": d,
        "samples_answered": len(records),
        "greedy_accuracy_pct": _pct(sum(1 for r in records if r["sample_index"] == 0 and r.get("correct")), n_q),
        "sample_accuracy_pct": _pct(len(correct), len(records)),
        "questions_with_kept_pct": _pct(n_q - kept_per_q.get(0, 0), n_q),
        "kept": int(summary["kept"]),
        "kept_per_question": round(int(summary["kept"]) / n_q, 2) if n_q else 0.0,
        "questions_by_kept": {k: kept_per_q.get(k, 0) for k in range(d + 1)},
        "distinct_rationales_pct": _pct(sum(distinct(rs) for rs in by_question.values()), len(records)),
        "distinct_correct_rationales_pct": _pct(
            sum(distinct([r for r in rs if r.get("correct")]) for rs in by_question.values()), len(correct)),
        "completion_tokens": run.get("completion_tokens"),
        "completion_tokens_per_s": run.get("completion_tokens_per_s"),
        "generation_s": generation_s,
        "wall_s": run.get("wall_s"),
        "whole_run_measured": run.get("samples_cached_at_start", 0) == 0,
    }


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def format_stats(s: dict[str, Any]) -> str:
    by_kept = ", ".join(f"{k}: {v}" for k, v in s["questions_by_kept"].items())
    lines = [
        f"teacher                 {s['teacher']} on {s['task']}, {s['questions']} questions x D = {s['samples_per_question']}",
        (f"teacher accuracy        {s['greedy_accuracy_pct']} % greedy (sample 0); {s['sample_accuracy_pct']} % of "
         f"{s['samples_answered']} answered samples"),
        (f"kept per question       {s['kept_per_question']} ({s['kept']} kept; questions with >= 1: "
         f"{s['questions_with_kept_pct']} %; questions by number kept: {by_kept})"),
        (f"distinct rationales     {s['distinct_rationales_pct']} % of all samples, "
         f"{s['distinct_correct_rationales_pct']} % of the correct ones"),
        (f"throughput              {s['completion_tokens_per_s']} completion tokens/s "
         f"({s['completion_tokens']} tokens in {s['generation_s']} s of generation)"),
        f"wall time               {s['wall_s']} s (model load and corpus included)",
    ]
    if not s["whole_run_measured"]:
        lines.append("note                    the last run resumed from a cache: throughput and wall time cover it only")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prada.teacher.stats", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="a teacher output folder (summary.json + samples/)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        stats = teacher_stats(args.out_dir)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
