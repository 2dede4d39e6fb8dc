"""PRADA vs FT-CoT: optimizer-step time and peak memory on the real student (printed, not a test).

    .venv/bin/python benchmarks/bench_train_step.py [--model smollm2-135m-instruct] [--backbone full]
        [--batch 8] [--seq 256] [--question 64] [--steps 5] [--warmup 2] [--grad-ckpt] [--rounds 1]
        [--device cpu|cuda] [--mixed-precision no|bf16]

Each method runs in its own subprocess (so peak RSS is that run's own), on the same source batch
(``batch × seq`` tokens: ``question`` question tokens + target tokens) — PRADA additionally runs
``batch`` target-domain questions of ``question`` tokens, its prompt encoder and the domain
classifier, exactly as ``prada.training.loop.Trainee`` does in training. Goals: PRADA/FT-CoT step
time ≤ 1.25×; PRADA peak RSS ≤ 4 GiB at batch 8 × 256 tokens. On ``--device cuda`` the peak is the
GPU memory torch allocated, and ``--mixed-precision bf16`` runs the forward passes under bf16
autocast as ``train.mixed_precision: bf16`` does.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def run_one(args: argparse.Namespace) -> dict:
    import torch

    from prada.adversarial import DomainClassifier, dann_lambda
    from prada.config import load_config
    from prada.student.student import build_student
    from prada.training.loop import Trainee, make_scheduler, param_groups
    from prada.training.methods import method_spec

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(None, [f"student.model={args.model}", f"train.backbone={args.backbone}",
                             f"train.batch_size={args.batch}", "methods=[ft_cot]"])
    spec = method_spec(args.method)
    student = build_student(cfg, args.method)
    if args.grad_ckpt:  # recompute activations in backward: memory for ~1/3 more compute
        student.causal_lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    classifier = DomainClassifier(student.hidden_size, 2, cfg.adversarial.classifier_hidden,
                                  cfg.adversarial.classifier_dropout) if spec.adversary else None
    device = torch.device(args.device)
    trainee = Trainee(student, classifier, cfg.adversarial.domain_loss_weight).to(device).train()
    optimizer = torch.optim.AdamW(param_groups(student, classifier, cfg))
    scheduler = make_scheduler(optimizer, cfg)

    g = torch.Generator().manual_seed(0)
    vocab = student.causal_lm.get_input_embeddings().num_embeddings
    b, t, q = args.batch, args.seq, args.question
    src = {"input_ids": torch.randint(0, vocab, (b, t), generator=g), "attention_mask": torch.ones(b, t, dtype=torch.long),
           "labels": torch.full((b, t), -100), "question_mask": torch.zeros(b, t, dtype=torch.long)}
    src["labels"][:, q + 1:] = src["input_ids"][:, q + 1:]  # prompt = question + "###", then the target
    src["question_mask"][:, :q] = 1
    tgt = {"input_ids": torch.randint(0, vocab, (b, q + 1), generator=g),
           "attention_mask": torch.ones(b, q + 1, dtype=torch.long), "question_mask": torch.ones(b, q + 1, dtype=torch.long)}
    tgt["question_mask"][:, -1] = 0
    src, tgt = {k: v.to(device) for k, v in src.items()}, {k: v.to(device) for k, v in tgt.items()}
    cuda = device.type == "cuda"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.mixed_precision == "bf16")

    times = []
    for step in range(args.warmup + args.steps):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        lam = dann_lambda(step, 100, 0.1)
        with autocast:
            out = trainee(src, tgt if spec.adversary else None, [b] if spec.adversary else None, lam)
        out.total.backward()
        torch.nn.utils.clip_grad_norm_([p for g_ in optimizer.param_groups for p in g_["params"]], 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    peak_gib = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else peak_kib / 2**20
    return {"method": args.method, "step_s_median": statistics.median(times), "step_s": times,
            "peak_gib": peak_gib, "peak_kind": "GPU" if cuda else "RSS", "trainable": {k: sum(p.numel() for p in v)
                                                             for k, v in student.trainable_parameters().items()},
            "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--backbone", default="full", choices=["frozen", "lora", "full"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--question", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--grad-ckpt", action="store_true", help="Enable activation (gradient) checkpointing.")
    p.add_argument("--rounds", type=int, default=1, help="Alternate the two methods this many times.")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16"])
    p.add_argument("--method", help=argparse.SUPPRESS)  # internal: run one method, print JSON
    args = p.parse_args()
    if args.method:
        print(json.dumps(run_one(args)))
        return

    base = [sys.executable, __file__] + [a for a in sys.argv[1:]]
    results: dict[str, list[dict]] = {"ft_cot": [], "prada": []}
    for _ in range(args.rounds):
        for method in ("ft_cot", "prada"):
            out = subprocess.run([*base, "--method", method], capture_output=True, text=True, check=True)
            results[method].append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = results[method][-1]
            print(f"  ... {method}: median step {r['step_s_median']:.3f} s, peak {r['peak_kind']} {r['peak_gib']:.2f} GiB",
                  flush=True)
    ft = statistics.median(r["step_s_median"] for r in results["ft_cot"])
    pr = statistics.median(r["step_s_median"] for r in results["prada"])
    rss = max(r["peak_gib"] for r in results["prada"])
    kind = results["prada"][0]["peak_kind"]
    print(f"model={args.model} device={args.device} mixed_precision={args.mixed_precision} backbone={args.backbone} "
          f"grad_ckpt={args.grad_ckpt} batch={args.batch}x{args.seq} tokens "
          f"(+{args.batch}x{args.question + 1} target tokens for PRADA), threads={results['prada'][0]['threads']}")
    for method, rs in results.items():
        print(f"  {method:7s} step {statistics.median(r['step_s_median'] for r in rs):.3f} s "
              f"(all: {[round(s, 3) for r in rs for s in r['step_s']]}), "
              f"{args.batch * args.seq / statistics.median(r['step_s_median'] for r in rs):.0f} source tokens/s, "
              f"peak {kind} {max(r['peak_gib'] for r in rs):.2f} GiB, trainable {rs[0]['trainable']}")
    print(f"  PRADA / FT-CoT step time: {pr / ft:.2f}x (goal <= 1.25x)")
    print(f"  PRADA peak {kind}: {rss:.2f} GiB (goal <= 4 GiB)")


if __name__ == "__main__":
    main()
