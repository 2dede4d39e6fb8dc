"""Batched evaluation (batch 16, KV cache, length-sorted, finished rows dropped) vs generating
one question at a time, on SmolLM2-135M-Instruct; prints generated tokens/s side by side.

    python benchmarks/bench_eval_batching.py [--questions 32] [--max-new-tokens 64] [--data-dir ../shared/data]
        [--device auto] [--dtype float32] [--batch-size 16]

Questions: MultiArith test questions when a data directory is found (``--data-dir`` or
``$PRADA_DATA_DIR``), else the synthetic ``synth_coin_flip`` task; prompts are Zero-Shot-CoT stage 1
(``Q: ...\\nA: Let's think step by step.``), greedy, stopping at EOS or ``\\nQ:``. The one-at-a-time
rows run the same decoder with batch 1 and Hugging Face ``generate`` per question; the script also
checks that the batched outputs equal the one-at-a-time ones.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch


def _questions(n: int, data_dir: str | None) -> tuple[str, list[str]]:
    from prada.data import get_task

    root = data_dir or os.environ.get("PRADA_DATA_DIR")
    if root is None and (Path(__file__).resolve().parents[2] / "shared" / "data" / "raw").is_dir():
        root = str(Path(__file__).resolve().parents[2] / "shared" / "data")
    if root:
        return "multiarith", [e.question for e in get_task("multiarith").load("test", root)[:n]]
    return "synth_coin_flip", [e.question for e in get_task("synth_coin_flip").load("test")[:n]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--questions", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--device", default="auto", help="an eval.device value: auto, cpu, cuda, cuda:N")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--skip-hf", action="store_true", help="skip the per-question HF generate baseline")
    ap.add_argument("--batched-only", action="store_true", help="time the batched decoder alone (implies --skip-hf)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from prada.config import StudentConfig
    from prada.evaluation.evaluate import ZERO_SHOT_COT_PROMPT, ZERO_SHOT_STAGE1_STOP, resolve_device
    from prada.evaluation.generate import greedy_generate
    from prada.student.student import load_student

    task, questions = _questions(args.questions, args.data_dir)
    student = load_student(args.model, StudentConfig(model=args.model, dtype=args.dtype)).to(resolve_device(args.device))
    tok = student.tokenizer
    prompts = [tok(ZERO_SHOT_COT_PROMPT.format(question=q))["input_ids"] for q in questions]
    print(f"model {args.model}, task {task}, {len(prompts)} questions, max_new_tokens {args.max_new_tokens}, "
          f"torch threads {torch.get_num_threads()}, device {student.device}, dtype {args.dtype}", flush=True)
    greedy_generate(student, prompts[:2], max_new_tokens=4, batch_size=2)  # warm-up

    rows = []

    def report(name: str, n_tok: int, sec: float) -> None:
        rows.append((name, n_tok, sec))
        print(f"  {name}: {n_tok} tokens in {sec:.1f} s = {n_tok / sec:.1f} tokens/s", flush=True)

    batched, st_b = greedy_generate(student, prompts, max_new_tokens=args.max_new_tokens,
                                    batch_size=args.batch_size, stop=ZERO_SHOT_STAGE1_STOP)
    report(f"batched (batch {args.batch_size})", st_b.generated_tokens, st_b.seconds)
    if args.batched_only:
        return
    single, st_1 = greedy_generate(student, prompts, max_new_tokens=args.max_new_tokens, batch_size=1,
                                   stop=ZERO_SHOT_STAGE1_STOP)
    report("one at a time (same decoder)", st_1.generated_tokens, st_1.seconds)
    if not args.skip_hf:
        start, n_tok = time.perf_counter(), 0
        for p in prompts:
            ids = torch.tensor([p], device=student.device)
            out = student.generate(ids, torch.ones_like(ids), max_new_tokens=args.max_new_tokens,
                                   stop_strings=list(ZERO_SHOT_STAGE1_STOP), tokenizer=tok)
            n_tok += int((out[0] != tok.pad_token_id).sum())
        report("one at a time (HF generate)", n_tok, time.perf_counter() - start)

    same = sum(a.token_ids == b.token_ids for a, b in zip(batched, single))
    print(f"\n{'mode':<32}{'tokens':>8}{'seconds':>10}{'tokens/s':>10}{'speed-up':>10}")
    base = rows[1][1] / rows[1][2]
    for name, n_tok, sec in rows:
        print(f"{name:<32}{n_tok:>8}{sec:>10.1f}{n_tok / sec:>10.1f}{(n_tok / sec) / base:>9.2f}x")
    print(f"\nbatched outputs identical to one-at-a-time: {same}/{len(prompts)}")


if __name__ == "__main__":
    main()
