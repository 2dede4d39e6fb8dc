"""How often lower-precision decoding reproduces fp32's answers on a trained student.

    python benchmarks/bench_precision.py RUN_DIR [--model ft_cot-seed0] [--variants bf16 bf16_exact ...]

``RUN_DIR`` is a finished ``prada run`` made in fp32 (``train.mixed_precision: "no"``,
``eval.dtype: float32``), e.g. ``configs/experiments/multiarith_tuned.yaml 'methods=[ft_cot]'
'seeds=[0]' train.mixed_precision=no output_dir=runs/parity/fp32``. Its trained model is decoded
again on the same questions of every evaluated task in each variant, and each answer is compared
with the one in ``RUN_DIR/eval/MODEL/TASK/predictions.jsonl``:

- ``fp32``: the reference again (should give all answers back);
- ``fp64``: everything in float64: how many answers fp32's own rounding decides (the floor any
  cheaper precision is measured against);
- ``bf16``: bf16 weights, plain bf16 logits (``eval.exact_top_logits: 0``);
- ``bf16_exact``: bf16 weights, each step's top 8 logits recomputed in fp32, SDPA attention;
- ``bf16_kernel_exact``: the same with the fused decoding-attention kernel (the default path:
  ``eval.decode_attention: auto``);
- ``fp32_residual``: bf16 matmuls under autocast, the residual stream and norms in fp32, bf16 logits;
- ``fp32_residual_exact``: both;
- ``bf16_weights_only``: fp32 arithmetic with every weight rounded to bf16 (what the weights'
  rounding alone changes);
- ``bf16_inputs_only``: fp32 arithmetic and weights, every linear layer's input rounded to bf16
  (what rounding the activations that enter the matmuls alone changes).

Prints, per variant and task, correct answers, answers equal to fp32, and identical texts
(``docs/results.md``, "Precision").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

VARIANTS = ("fp32", "fp64", "bf16", "bf16_exact", "bf16_kernel_exact", "fp32_residual", "fp32_residual_exact",
            "bf16_weights_only", "bf16_inputs_only")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--model", default="ft_cot-seed0", help="the trained model's folder name under train/ and eval/")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS[2:]))
    ap.add_argument("--out", type=Path, default=Path("runs/bench_precision"), help="where the predictions go")
    args = ap.parse_args()

    import torch
    from torch import nn

    from prada.config import load_config
    from prada.data import get_task
    from prada.evaluation.evaluate import evaluate_model, load_model_for_eval
    from prada.evaluation.exact_logits import exact_top_logits
    from prada.evaluation.row_attention import use_decode_kernel

    cfg = load_config(args.run_dir / "config.yaml")
    tasks = sorted(p.name for p in (args.run_dir / "eval" / args.model).iterdir() if p.is_dir())
    for variant in args.variants:
        student, _ = load_model_for_eval(args.run_dir / "train" / args.model / "final", cfg.student, "cpu", "float32")
        lm = student.causal_lm
        head = lm.get_output_embeddings()
        fp32_head = head.weight.detach().float().clone()
        autocast = variant.startswith("fp32_residual")
        if autocast:
            # The linear layers' weights in bf16 (autocast feeds them bf16 inputs); the head gets
            # its own bf16 copy, as it may share its weight with the fp32 input embeddings.
            for module in lm.modules():
                if isinstance(module, nn.Linear) and module is not head:
                    module.to(torch.bfloat16)
            bf16_head = nn.Linear(fp32_head.shape[1], fp32_head.shape[0], bias=False, dtype=torch.bfloat16)
            bf16_head.weight = nn.Parameter(fp32_head.bfloat16(), requires_grad=False)
            lm.set_output_embeddings(bf16_head)
        elif variant == "fp64":
            lm.to(torch.float64)
        elif variant == "bf16_weights_only":
            with torch.no_grad():
                for param in lm.parameters():
                    param.copy_(param.bfloat16().float())
        elif variant == "bf16_inputs_only":
            for module in lm.modules():
                if isinstance(module, nn.Linear):
                    module.register_forward_pre_hook(lambda _, args: (args[0].bfloat16().float(), *args[1:]))
        elif variant != "fp32":
            lm.to(torch.bfloat16)
        if variant == "bf16_kernel_exact" and not use_decode_kernel(lm):
            raise SystemExit("bf16_kernel_exact: the decoding attention kernel cannot be built here")
        if variant.endswith("exact"):
            exact_top_logits(lm, fp32_head, 8)
        total = same_total = 0
        for task in tasks:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                m = evaluate_model(student, get_task(task), cfg, args.out / variant / task,
                                   model_name=args.model, force=True)
            read = lambda path: {r["id"]: r for r in map(json.loads, path.open())}  # noqa: E731
            ref = read(args.run_dir / "eval" / args.model / task / "predictions.jsonl")
            new = read(args.out / variant / task / "predictions.jsonl")
            same = sum(ref[i]["prediction"] == new[i]["prediction"] for i in ref)
            same_text = sum(ref[i]["output"] == new[i]["output"] for i in ref)
            print(f"{variant} {task}: correct {m.correct}/{m.n}, same answer as fp32 {same}/{len(ref)}, "
                  f"same text {same_text}/{len(ref)}, {m.tokens_per_s:.0f} tokens/s", flush=True)
            total, same_total = total + len(ref), same_total + same
        print(f"{variant}: same answer as fp32 {same_total}/{total} ({100 * same_total / total:.1f} %)", flush=True)


if __name__ == "__main__":
    main()
