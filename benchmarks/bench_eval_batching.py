"""Greedy decoding throughput: the fp32 reference (batch 16, as evaluation ran before ``eval.dtype``)
against the fast path (``eval.dtype: auto``, a large batch), side by side on the same questions;
prints generated tokens/s, the speed-up, and how often the two agree (printed, not a test).

    python benchmarks/bench_eval_batching.py [--questions 128] [--max-new-tokens 128]
        [--data-dir ../shared/data] [--device auto] [--fast-batch-size 128] [--ref-batch-size 16]
        [--fast-dtype auto] [--exact-top-logits 8] [--decode-attention auto] [--skip-reference]

Questions: MultiArith test questions when a data directory is found (``--data-dir`` or
``$PRADA_DATA_DIR``, else ``../shared/data`` beside the repo), else the synthetic
``synth_coin_flip`` task. Prompts are Zero-Shot-CoT stage 1 (``Q: ...\\nA: Let's think step by
step.``), greedy, stopping at EOS or ``\\nQ:``; the answer compared is the one evaluation would read
from the text (the last number for MultiArith). Goal (issue 14, 2 AMX cores, SmolLM2-135M, 128
MultiArith questions, 128 new tokens): >= 1,000 tokens/s, answers equal to fp32 on >= 95 %.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


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
    ap.add_argument("--questions", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--device", default="auto", help="an eval.device value: auto, cpu, cuda, cuda:N")
    ap.add_argument("--ref-batch-size", type=int, default=16)
    ap.add_argument("--fast-batch-size", type=int, default=128)
    ap.add_argument("--fast-dtype", default="auto", help="an eval.dtype value for the fast path")
    ap.add_argument("--exact-top-logits", type=int, default=8,
                    help="eval.exact_top_logits of the fast path (0: plain bf16 logits)")
    ap.add_argument("--decode-attention", default="auto", choices=["auto", "sdpa"],
                    help="eval.decode_attention of the fast path (auto: the fused kernel; sdpa: PyTorch's)")
    ap.add_argument("--skip-reference", action="store_true", help="time the fast path alone")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from prada.config import StudentConfig
    from prada.data.answers import extract_student_answer
    from prada.data.example import AnswerType
    from prada.evaluation.evaluate import ZERO_SHOT_STAGE1_STOP, load_model_for_eval
    from prada.evaluation.generate import greedy_generate
    from prada.formats import zero_shot_cot_prompt

    task, questions = _questions(args.questions, args.data_dir)
    answer_type = AnswerType.NUMBER if task == "multiarith" else AnswerType.YES_NO
    runs = [] if args.skip_reference else [("fp32 reference", "float32", args.ref_batch_size, 0)]
    runs.append(("fast path", args.fast_dtype, args.fast_batch_size, args.exact_top_logits))
    outputs, rates = {}, {}
    for name, dtype, batch, exact in runs:
        student, info = load_model_for_eval(args.model, StudentConfig(model=args.model), args.device, dtype, exact,
                                            args.decode_attention)
        tok = student.tokenizer
        prompts = [tok(zero_shot_cot_prompt(q))["input_ids"] for q in questions]
        greedy_generate(student, prompts[:2], max_new_tokens=4, batch_size=2, stop=ZERO_SHOT_STAGE1_STOP)  # warm-up
        gens, stats = greedy_generate(student, prompts, max_new_tokens=args.max_new_tokens, batch_size=batch,
                                      stop=ZERO_SHOT_STAGE1_STOP)
        outputs[name], rates[name] = gens, stats.tokens_per_s
        attention = student.causal_lm.config._attn_implementation
        print(f"{name}: {info['dtype']}, exact top logits {exact}, attention {attention}, batch {batch}, {stats.generated_tokens} tokens in {stats.seconds:.1f} s = "
              f"{stats.tokens_per_s:.0f} tokens/s ({args.model}, {task}, {len(prompts)} questions, "
              f"max_new_tokens {args.max_new_tokens}, device {student.device}, {torch.get_num_threads()} threads)",
              flush=True)
        del student
    if len(runs) == 2:
        ref, fast = outputs["fp32 reference"], outputs["fast path"]
        same_text = sum(a.text == b.text for a, b in zip(ref, fast))
        same_answer = sum(extract_student_answer(a.text, answer_type) == extract_student_answer(b.text, answer_type)
                          for a, b in zip(ref, fast))
        print(f"speed-up {rates['fast path'] / rates['fp32 reference']:.2f}x; identical text {same_text}/{len(ref)}; "
              f"same answer {same_answer}/{len(ref)} ({100 * same_answer / len(ref):.1f} %)")


if __name__ == "__main__":
    main()
