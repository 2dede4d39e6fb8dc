"""Training-step time, source tokens/s and peak memory on the real student, fp32 vs the fast path,
FT-CoT vs PRADA, side by side in one run (printed, not a test).

    .venv/bin/python benchmarks/bench_train_step.py [--model smollm2-135m-instruct] [--backbone full]
        [--batch 8] [--seq 256] [--question 64] [--targets 8] [--steps 8] [--warmup 2] [--grad-ckpt] [--rounds 1]
        [--device cpu|cuda] [--precisions no,auto] [--compile auto|yes|no] [--attention auto|model|sdpa_recompute]
        [--memory-budget 0.95] [--methods ft_cot,prada]

Every (precision, method) runs in its own subprocess (peak RSS is that run's own), on the same
source batch (``batch × seq`` tokens: ``question`` question tokens, then target tokens); PRADA also
runs ``targets`` (default ``batch``) target questions of ``question`` tokens, its prompt encoder and the domain
classifier. A step is what ``prada.training.loop.train`` does: the precision and compile choices
it resolves (``prada.hardware``), its optimizer (``make_optimizer``), LR schedule, separate
gradient clipping and the allocator tuning; the fp32 run is the reference path.

Goals (issue 14, 2 AMX cores, SmolLM2-135M, full backbone, batch 8 × 256): FT-CoT on the fast path
≥ 3× the fp32 source tokens/s; PRADA / FT-CoT step time ≤ 1.25×; PRADA peak RSS ≤ 4 GiB without
gradient checkpointing. On ``--device cuda`` the peak is the GPU memory torch allocated.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from prada.config import TrainConfig


def run_one(args: argparse.Namespace) -> dict:
    import torch

    from prada.adversarial import DomainClassifier, dann_lambda
    from prada.config import load_config
    from prada.hardware import resolve_attention, resolve_compile, resolve_mixed_precision, tune_allocator
    from prada.methods import method_spec
    from prada.student.student import build_student
    from prada.training.loop import Trainee, clip_gradients, make_optimizer, make_scheduler, param_groups

    device = torch.device(args.device)
    precision = resolve_mixed_precision(args.precision, device)
    compiled = resolve_compile(args.compile, precision, device)
    tune_allocator()
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(None, [f"student.model={args.model}", f"train.backbone={args.backbone}",
                             f"train.batch_size={args.batch}", "methods=[ft_cot]", "train.max_steps=100"])
    spec = method_spec(args.method)
    student = build_student(cfg, prompt_encoder=spec.prompt_encoder)
    student.fused_lm_loss = precision != "no"
    attention = resolve_attention(args.train_attention, compiled, precision, device)
    if args.attn:
        student.causal_lm.set_attn_implementation(args.attn)
    elif attention != "model":
        student.set_training_attention(attention)
    if args.grad_ckpt:  # recompute activations in backward: memory for ~1/3 more compute
        student.causal_lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if compiled:
        student.compile_layers(args.memory_budget)
    classifier = DomainClassifier(student.hidden_size, 2, cfg.adversarial.classifier_hidden,
                                  cfg.adversarial.classifier_dropout) if spec.adversary else None
    trainee = Trainee(student, classifier, cfg.adversarial.domain_loss_weight).to(device).train()
    optimizer = make_optimizer(param_groups(student, classifier, cfg), fused=precision != "no")
    scheduler = make_scheduler(optimizer, cfg)

    g = torch.Generator().manual_seed(0)
    vocab = student.causal_lm.get_input_embeddings().num_embeddings
    b, t, q = args.batch, args.seq, args.question
    src = {"input_ids": torch.randint(0, vocab, (b, t), generator=g), "attention_mask": torch.ones(b, t, dtype=torch.long),
           "labels": torch.full((b, t), -100), "question_mask": torch.zeros(b, t, dtype=torch.long)}
    src["labels"][:, q + 1:] = src["input_ids"][:, q + 1:]  # prompt = question + "###", then the target
    src["question_mask"][:, :q] = 1
    nt = args.targets or b
    tgt = {"input_ids": torch.randint(0, vocab, (nt, q + 1), generator=g),
           "attention_mask": torch.ones(nt, q + 1, dtype=torch.long), "question_mask": torch.ones(nt, q + 1, dtype=torch.long)}
    tgt["question_mask"][:, -1] = 0
    src, tgt = {k: v.to(device) for k, v in src.items()}, {k: v.to(device) for k, v in tgt.items()}
    cuda = device.type == "cuda"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    class _Accelerator:  # what clip_gradients reads of accelerate's Accelerator
        scaler = None

    times, first = [], None
    for step in range(args.warmup + args.steps):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        lam = dann_lambda(step, 100, 0.1)
        with autocast:
            out = trainee(src, tgt if spec.adversary else None, [nt] if spec.adversary else None, lam)
        out.total.backward()
        clip_gradients(trainee, cfg, _Accelerator())
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if step == 0:
            first = elapsed
        if step >= args.warmup:
            times.append(elapsed)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    peak_gib = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else peak_kib / 2**20
    return {"method": args.method, "precision": precision, "compiled": compiled, "attention": attention, "first_step_s": first,
            "step_s_median": statistics.median(times), "step_s": times, "peak_gib": peak_gib,
            "peak_kind": "GPU" if cuda else "RSS", "threads": torch.get_num_threads(),
            "trainable": {k: sum(p.numel() for p in v) for k, v in student.trainable_parameters().items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--backbone", default="full", choices=["frozen", "lora", "full"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--question", type=int, default=64)
    p.add_argument("--targets", type=int, default=0, help="PRADA's target questions per step (default: --batch)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2, help="untimed first steps (compilation, allocator warm-up)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--grad-ckpt", action="store_true", help="Enable activation (gradient) checkpointing.")
    p.add_argument("--rounds", type=int, default=1, help="Repeat the whole grid this many times.")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--precisions", default="no,auto", help="train.mixed_precision values, comma-separated")
    p.add_argument("--mixed-precision", dest="precisions_alias", help=argparse.SUPPRESS)  # the old flag
    p.add_argument("--compile", default="auto", choices=["auto", "yes", "no"], help="train.compile")
    p.add_argument("--methods", default="ft_cot,prada")
    p.add_argument("--memory-budget", type=float, default=TrainConfig.activation_memory_budget,
                   help="train.activation_memory_budget (compiled layers)")
    p.add_argument("--attn", default=None, help="a transformers attention implementation (overrides --attention)")
    p.add_argument("--attention", dest="train_attention", default="auto", help="train.attention: auto, model, sdpa_recompute")
    p.add_argument("--method", help=argparse.SUPPRESS)  # internal: run one (precision, method), print JSON
    p.add_argument("--precision", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.method:
        print(json.dumps(run_one(args)))
        return
    precisions = (args.precisions_alias or args.precisions).split(",")
    methods = args.methods.split(",")

    passthrough = [a for a in sys.argv[1:]]
    results: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for precision in precisions:
            for method in methods:
                cmd = [sys.executable, __file__, *passthrough, "--method", method, "--precision", precision]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode != 0:
                    sys.exit(f"{method} at {precision} failed:\n{out.stderr[-3000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                results.setdefault((r["precision"], method), []).append(r)
                print(f"  ... {method} {r['precision']}{' compiled' if r['compiled'] else ''} attention={r['attention']}: first step "
                      f"{r['first_step_s']:.1f} s, median {r['step_s_median']:.3f} s, peak {r['peak_kind']} "
                      f"{r['peak_gib']:.2f} GiB", flush=True)

    any_r = next(iter(results.values()))[0]
    print(f"\nmodel={args.model} device={args.device} backbone={args.backbone} grad_ckpt={args.grad_ckpt} "
          f"activation_memory_budget={args.memory_budget:g} "
          f"batch={args.batch}x{args.seq} tokens (+{args.targets or args.batch}x{args.question + 1} target tokens for PRADA), "
          f"threads={any_r['threads']}, {args.steps} timed steps after {args.warmup}")
    print(f"{'method':8s} {'precision':10s} {'step s':>8s} {'tokens/s':>9s} {'peak GiB':>9s}  all steps")
    median = {key: statistics.median(r["step_s_median"] for r in rs) for key, rs in results.items()}
    for (precision, method), rs in results.items():
        label = precision + (" +compile" if rs[0]["compiled"] else "")
        print(f"{method:8s} {label:10s} {median[precision, method]:8.3f} {args.batch * args.seq / median[precision, method]:9.0f} "
              f"{max(r['peak_gib'] for r in rs):9.2f}  {[round(s, 2) for r in rs for s in r['step_s']]}")
    fast = [p for p, _ in results if p != "no"]
    if ("no", "ft_cot") in median and fast and (fast[0], "ft_cot") in median:
        print(f"  FT-CoT {fast[0]} / fp32 speed: {median['no', 'ft_cot'] / median[fast[0], 'ft_cot']:.2f}x (goal >= 3x)")
    for precision in dict.fromkeys(p for p, _ in results):
        if (precision, "prada") in median and (precision, "ft_cot") in median:
            rss = max(r["peak_gib"] for r in results[precision, "prada"])
            print(f"  {precision}: PRADA / FT-CoT step time {median[precision, 'prada'] / median[precision, 'ft_cot']:.2f}x "
                  f"(goal <= 1.25x); PRADA peak {any_r['peak_kind']} {rss:.2f} GiB (goal <= 4 GiB)")


if __name__ == "__main__":
    main()
