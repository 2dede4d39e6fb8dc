"""The report's figures, each a PNG at 150 dpi with titles, labelled axes, legends and the same
colour per method everywhere (``prada.reporting.style``).

- ``accuracy_vs_steps.png``: target accuracy vs optimizer step, one panel per target, FT-CoT vs
  PRADA with the band between them (the paper's Fig. 6).
- ``tsne.png``: t-SNE of pooled question features of source and targets, without and with PRADA
  side by side (Fig. 5).
- ``training_curves.png``: L_y, L_d, domain-classifier accuracy and λ vs step.
- ``pad.png``: proxy A-distance source→target per method (bars, std over seeds as error bars).

Every function returns the written path, or ``None`` (with a note in ``data``) when its inputs are
missing.
"""

from __future__ import annotations

import logging
import textwrap
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from prada.methods import REFERENCE_PREFERENCE
from prada.reporting.collect import FeatureRecord, ReportData
from prada.reporting.style import (
    ADV_METHOD,
    BASE_METHOD,
    BASELINE_METHODS,
    SOURCE_COLOUR,
    method_colour,
    method_label,
    method_sort_key,
    target_colour,
)
from prada.reporting.tables import Tables

logger = logging.getLogger(__name__)

DPI = 150
TSNE_SEED = 0
_RC: Any = {  # matplotlib's rcParams keys (typed as a Literal of every key)
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9.5,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "figure.titlesize": 14,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


@contextmanager
def _style() -> Iterator[Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with plt.rc_context(_RC):
        yield plt


def _save(fig: Any, path: Path, *, tight: bool = True) -> Path:
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Fixed metadata so that regenerating gives identical bytes.
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return path


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return (n + cols - 1) // cols, cols


# --------------------------------------------------------------------------------------------
# (a) accuracy vs training steps
# --------------------------------------------------------------------------------------------


def _curves(data: ReportData, task: str) -> dict[str, dict[int, list[float]]]:
    """method -> step -> accuracies (%) over seeds, from snapshot and final evaluations."""
    curves: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for rec in data.evals:
        if rec.task != task or rec.model.seed is None or rec.step is None:
            continue
        curves[rec.model.method][rec.step].append(100.0 * rec.accuracy)
    return curves


def plot_accuracy_vs_steps(data: ReportData, out: Path) -> Path | None:
    targets = [t for t in data.tasks() if data.role(t) == "target"] or [
        t for t in data.tasks() if data.role(t) != "source"
    ]
    panels = [(t, _curves(data, t)) for t in targets]
    panels = [(t, c) for t, c in panels if any(len(steps) >= 2 for steps in c.values())]
    if not panels:
        data.note(
            "no snapshot evaluations (eval/{method}-seed{s}@step-N/{task}/): the accuracy-vs-steps plot is skipped"
        )
        return None
    baselines = {
        (rec.model.method, rec.task): 100.0 * rec.accuracy
        for rec in data.final_evals
        if rec.model.method in BASELINE_METHODS
    }
    rows, cols = _grid(len(panels))
    with _style() as plt:
        # At least 8 in wide: the legend below the panels must fit even with a single target.
        fig, axes = plt.subplots(rows, cols, figsize=(max(8.0, 5.0 * cols), 3.6 * rows + 0.6), squeeze=False)
        legend: dict[str, Any] = {}
        for ax, (task, curves) in zip(axes.flat, panels):
            means: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for method in sorted(curves, key=method_sort_key):
                steps = np.array(sorted(curves[method]))
                accs = [curves[method][s] for s in steps]
                mean = np.array([np.mean(a) for a in accs])
                std = np.array([np.std(a, ddof=1) if len(a) > 1 else 0.0 for a in accs])
                means[method] = (steps, mean)
                n_seeds = max(len(a) for a in accs)
                label = method_label(method) + (f" (mean ± std of {n_seeds} seeds)" if n_seeds > 1 else "")
                handle = ax.errorbar(
                    steps, mean, yerr=std if n_seeds > 1 else None, marker="o", ms=4, lw=2, capsize=3,
                    color=method_colour(method), label=label, zorder=3,
                )
                legend.setdefault(label, handle)
            if BASE_METHOD in means and ADV_METHOD in means:
                s_base, m_base = means[BASE_METHOD]
                s_adv, m_adv = means[ADV_METHOD]
                common = np.intersect1d(s_base, s_adv)
                if len(common) >= 2:
                    lo = np.interp(common, s_base, m_base)
                    hi = np.interp(common, s_adv, m_adv)
                    gain = f"band: {method_label(ADV_METHOD)} ahead of {method_label(BASE_METHOD)}"
                    loss = f"band: {method_label(ADV_METHOD)} behind {method_label(BASE_METHOD)}"
                    h = ax.fill_between(common, lo, hi, where=hi >= lo, interpolate=True, color="#009E73",
                                        alpha=0.22, lw=0, label=gain)
                    if (hi >= lo).any():
                        legend.setdefault(gain, h)
                    h = ax.fill_between(common, lo, hi, where=hi < lo, interpolate=True, color="#999999",
                                        alpha=0.35, lw=0, label=loss)
                    if (hi < lo).any():
                        legend.setdefault(loss, h)
            for (method, t), acc in baselines.items():
                if t == task:
                    label = method_label(method)
                    legend.setdefault(label, ax.axhline(acc, color=method_colour(method), ls="--", lw=1.3, label=label))
            ax.set_title(f"{task} ({data.role(task)})")
            ax.set_xlabel("optimizer step")
            ax.set_ylabel("accuracy (%)")
            ax.set_ylim(bottom=0)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        fig.suptitle("Target accuracy during training")
        fig.tight_layout(rect=(0, 0.62 / (3.6 * rows + 0.6), 1, 1))
        fig.legend(list(legend.values()), list(legend.keys()), loc="lower center",
                   ncol=min(3, len(legend)), frameon=False)
        return _save(fig, out, tight=False)


# --------------------------------------------------------------------------------------------
# (b) t-SNE of pooled question features
# --------------------------------------------------------------------------------------------


def _pick_feature_models(data: ReportData) -> list[FeatureRecord]:
    finals = [f for f in data.features if f.model.snapshot_step is None]
    if not finals:
        return []
    by_method: dict[str, list[FeatureRecord]] = defaultdict(list)
    for f in finals:
        by_method[f.model.method].append(f)
    for recs in by_method.values():
        recs.sort(key=lambda r: -1 if r.model.seed is None else r.model.seed)
    without = next(
        (m for m in REFERENCE_PREFERENCE if m in by_method), None
    )
    if without is None:
        without = next((m for m in sorted(by_method, key=method_sort_key) if m != ADV_METHOD), None)
    chosen = [m for m in (without, ADV_METHOD) if m is not None and m in by_method]
    if len(chosen) == 2:
        common = {r.model.seed for r in by_method[chosen[0]]} & {r.model.seed for r in by_method[chosen[1]]}
        if common:
            seed = min(common, key=lambda s: -1 if s is None else s)
            return [next(r for r in by_method[m] if r.model.seed == seed) for m in chosen]
    return [by_method[m][0] for m in chosen]


def _domain_order(data: ReportData, domains: list[str]) -> list[str]:
    order = [d for d in [data.source, *data.targets] if d in domains]
    return order + sorted(set(domains) - set(order))


def plot_tsne(data: ReportData, out: Path) -> Path | None:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    models = _pick_feature_models(data)
    if not models:
        if data.features:
            data.note("only snapshot features found: t-SNE is skipped")
        return None
    if len(models) == 1:
        data.note(f"features of one model only ({models[0].model}): t-SNE has a single panel")
    domains = _domain_order(data, sorted({d for m in models for d in m.features}))
    colours = {}
    k = 0
    for d in domains:
        if d == data.source:
            colours[d] = SOURCE_COLOUR
        else:
            colours[d] = target_colour(k)
            k += 1
    cap = data.report_cfg.feature_examples
    with _style() as plt:
        fig, axes = plt.subplots(1, len(models), figsize=(5.6 * len(models), 5.6), squeeze=False)
        legend: dict[str, Any] = {}
        counts: dict[str, int] = {}
        for ax, rec in zip(axes.flat, models):
            rng = np.random.default_rng(TSNE_SEED)
            xs, labels = [], []
            for d in domains:
                if d not in rec.features:
                    continue
                feats = np.asarray(rec.features[d], dtype=np.float64)
                if len(feats) > cap:
                    feats = feats[np.sort(rng.choice(len(feats), size=cap, replace=False))]
                xs.append(feats)
                labels += [d] * len(feats)
            x = np.concatenate(xs)
            labels_arr = np.array(labels)
            if len(x) < 5:
                ax.text(0.5, 0.5, "too few points for t-SNE", ha="center", va="center", transform=ax.transAxes)
                ax.axis("off")
                continue
            x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)
            perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3.0)))
            with threadpool_limits(limits=1):  # a few hundred points: threads only add contention
                emb = TSNE(
                    n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=TSNE_SEED
                ).fit_transform(x)
            for d in domains:
                sel = labels_arr == d
                if not sel.any():
                    continue
                is_source = d == data.source
                label = f"{d} ({data.role(d)})"
                counts[d] = max(counts.get(d, 0), int(sel.sum()))
                h = ax.scatter(
                    emb[sel, 0], emb[sel, 1], s=16 if is_source else 14, alpha=0.75,
                    marker="o" if is_source else "^", color=colours[d], edgecolors="none", label=label,
                )
                legend.setdefault(label, h)
            seed = "" if rec.model.seed is None else f", seed {rec.model.seed}"
            ax.set_title(f"{method_label(rec.model.method)}{seed}")
            ax.set_xlabel("t-SNE dimension 1 (a.u.)")
            ax.set_ylabel("t-SNE dimension 2 (a.u.)")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        sizes = set(counts.values())
        n_text = (f"{next(iter(sizes))} questions per domain" if len(sizes) == 1
                  else "questions: " + ", ".join(f"{d} {n}" for d, n in counts.items()))
        # Wrapped: with many domains the per-domain counts outgrow the figure width.
        fig.suptitle(textwrap.fill(f"Pooled question features, source vs targets (t-SNE; {n_text})", 100))
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        fig.legend(list(legend.values()), list(legend.keys()), loc="lower center", ncol=min(5, len(legend)),
                   frameon=False, markerscale=1.8)
        return _save(fig, out, tight=False)


# --------------------------------------------------------------------------------------------
# (c) training curves
# --------------------------------------------------------------------------------------------

_LOG_KEYS = {
    "L_y": ("L_y", "loss_y", "lm_loss"),
    "L_d": ("L_d", "loss_d", "domain_loss"),
    "domain_acc": ("domain_acc", "domain_accuracy"),
    "lambda": ("lambda", "lam", "grl_lambda"),
}
_PANELS = (
    ("L_y", "Task loss $L_y$", "cross-entropy (nats/token)"),
    ("L_d", "Domain loss $L_d$", "cross-entropy (nats)"),
    ("domain_acc", "Domain-classifier accuracy", "accuracy (fraction)"),
    ("lambda", "GRL coefficient λ", "λ"),
)


def _series(log: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    steps, values = [], []
    for i, rec in enumerate(log):
        value = next((rec[k] for k in _LOG_KEYS[key] if rec.get(k) is not None), None)
        if isinstance(value, (int, float)) and np.isfinite(value):
            steps.append(rec.get("step", i + 1))
            values.append(float(value))
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def _smooth(values: np.ndarray) -> np.ndarray:
    window = max(1, len(values) // 20)
    if window == 1:
        return values
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def plot_training_curves(data: ReportData, out: Path) -> Path | None:
    trains = [t for t in data.trains if t.log]
    if not trains:
        data.note("no training logs (train/*/log.jsonl): the training-curves plot is skipped")
        return None
    trains.sort(key=lambda t: (method_sort_key(t.method), -1 if t.seed is None else t.seed))
    n_domains = 1 + len(data.targets) if data.targets else 2
    with _style() as plt:
        fig, axes = plt.subplots(2, 2, figsize=(11.0, 7.5))
        labelled: set[tuple[str, str]] = set()
        for ax, (key, title, ylabel) in zip(axes.flat, _PANELS):
            drawn = False
            for run in trains:
                steps, values = _series(run.log, key)
                if len(values) == 0 or (key == "lambda" and len(_series(run.log, "L_d")[1]) == 0):
                    continue  # λ of a method without a domain adversary is a constant 0: not drawn
                colour = method_colour(run.method)
                label = None
                if (key, run.method) not in labelled:
                    labelled.add((key, run.method))
                    label = method_label(run.method)
                if key in ("L_y", "L_d") and len(values) >= 40:
                    ax.plot(steps, values, color=colour, alpha=0.2, lw=0.8)
                    ax.plot(steps, _smooth(values), color=colour, lw=2, label=label)
                else:
                    ax.plot(steps, values, color=colour, lw=2, label=label)
                drawn = True
            if key == "domain_acc" and drawn:
                ax.axhline(1.0 / n_domains, color="black", ls=":", lw=1.2, label=f"uniform guess (1/{n_domains})")
                shares = {t.source_share for t in trains if t.source_share is not None and _series(t.log, key)[1].size}
                if len(shares) == 1:  # always answering "source" scores this: the bar to clear
                    share = shares.pop()
                    ax.axhline(share, color="black", ls="--", lw=1.2, label=f"always 'source' ({share:.2f})")
                ax.set_ylim(0, 1.02)
            if not drawn:
                ax.text(0.5, 0.5, "not logged by these runs\n(no domain adversary)" if key != "L_y" else "not logged",
                        ha="center", va="center", transform=ax.transAxes, color="#555555")
            ax.set_title(title)
            ax.set_xlabel("optimizer step")
            ax.set_ylabel(ylabel)
            if drawn:
                ax.legend(loc="best", frameon=False)
        smoothed = any(len(_series(r.log, "L_y")[1]) >= 40 for r in trains)
        fig.suptitle("Training curves" + (" (losses: raw faint, moving average bold)" if smoothed else ""))
        return _save(fig, out)


# --------------------------------------------------------------------------------------------
# (d) proxy A-distance
# --------------------------------------------------------------------------------------------


def plot_pad(data: ReportData, tables: Tables, out: Path) -> Path | None:
    if not tables.pad:
        return None
    domains = sorted({d for _, d in tables.pad}, key=lambda d: (data.role(d) != "target", d))
    methods = sorted({m for m, _ in tables.pad}, key=method_sort_key)
    width = 0.8 / len(methods)
    x = np.arange(len(domains))
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(max(6.5, 1.2 * len(domains) * len(methods) + 2.5), 4.6))
        for i, m in enumerate(methods):
            cells = [tables.pad.get((m, d)) for d in domains]
            means = np.array([c.mean if c else np.nan for c in cells])
            errs = np.array([c.std if c and c.std is not None else 0.0 for c in cells])
            pos = x - 0.4 + width * (i + 0.5)
            bars = ax.bar(pos, means, width * 0.92, yerr=errs if errs.any() else None, capsize=3,
                          color=method_colour(m), label=method_label(m))
            for b, v, e in zip(bars, means, errs):
                if np.isfinite(v):
                    ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, max(v, 0) + e), ha="center",
                                va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(x, [f"{data.source or 'source'} → {d}" for d in domains])
        ax.set_ylabel("proxy A-distance (0 = mixed, 2 = separable)")
        lo = min(0.0, np.nanmin([c.mean for c in tables.pad.values()]) - 0.1)
        ax.grid(axis="x", visible=False)
        ax.set_ylim(lo, 2.55)
        ax.axhline(2.0, color="black", lw=0.8, ls=":")
        ax.set_title("Proxy A-distance: source vs target features\n(lower = more domain-invariant)")
        ax.legend(loc="upper center", ncol=len(methods), frameon=False)
        return _save(fig, out)
