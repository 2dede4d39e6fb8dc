"""Method × dataset tables: accuracy (mean ± std over seeds, bootstrap 95% interval over
questions and seeds, n questions) and proxy A-distance, as Markdown, CSV and HTML.

Everything here is a pure function of the collected files: the bootstrap uses a fixed seed, so
regenerating the report from the same run dirs gives byte-identical tables.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prada.errors import ReportError
from prada.methods import ABLATION_BASELINES, ADV_METHOD, BASE_METHOD
from prada.reporting.collect import EvalRecord, ReportData
from prada.reporting.stats import (
    BOOTSTRAP_SEED,
    QuestionOutcomes,
    bootstrap_ci,
    bootstrap_ci_from_counts,
    bootstrap_diff_ci,
    mean_std,
    paired_matrices,
    proxy_a_distance,
)
from prada.reporting.style import method_label, method_sort_key


@dataclass
class AccuracyCell:
    method: str
    task: str
    role: str
    seeds: list[int | None]
    accuracies: list[float]
    """Per seed, in percent, in ``seeds`` order."""
    n_questions: list[int]
    mean: float
    std: float | None
    ci_low: float
    ci_high: float


@dataclass
class PadCell:
    method: str
    target: str
    seeds: list[int | None]
    values: list[float]
    mean: float
    std: float | None


@dataclass
class Tables:
    methods: list[str]
    tasks: list[str]
    roles: dict[str, str]
    cells: dict[tuple[str, str], AccuracyCell] = field(default_factory=dict)
    target_avg: dict[str, tuple[float, float | None, int]] = field(default_factory=dict)
    """method -> (mean, std, seeds) of the per-seed mean accuracy over all targets."""
    pad: dict[tuple[str, str], PadCell] = field(default_factory=dict)
    bootstrap_samples: int = 1000
    comparison: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)
    """baseline -> task (or TARGET_AVG) -> (PRADA − baseline in points, 95% CI low, high)."""
    comparison_seeds: dict[str, list[int | None]] = field(default_factory=dict)
    """baseline -> the seeds both it and PRADA ran (the only ones compared)."""
    evals: dict[tuple[str, str], list[EvalRecord]] = field(default_factory=dict)
    """(method, task) -> its final evaluations in ``cells[...].seeds`` order (the paired
    comparison joins their per-question outcomes by question id)."""


COMPARED = (BASE_METHOD, ADV_METHOD)
"""The headline comparison: (baseline, method)."""
TARGET_AVG = "target avg"


def _seed_key(seed: int | None) -> int:
    return -1 if seed is None else seed


def _accuracy_interval(records: list[EvalRecord], data: ReportData, samples: int) -> tuple[float, float]:
    """Bootstrap interval of one cell: seeds joined by question id when they answered the same
    questions; resampled independently when not; from the counts when outcomes are missing."""
    outcomes = [r.outcomes() for r in records]
    label = f"{records[0].model.method}/{records[0].task}"
    if any(o is None for o in outcomes):
        return bootstrap_ci_from_counts([(r.metrics.correct, r.n) for r in records],
                                        samples=samples, seed=BOOTSTRAP_SEED)
    present = [o for o in outcomes if o is not None]
    if len({frozenset(o.ids) for o in present}) == 1:
        ids = sorted(present[0].ids)
        return bootstrap_ci(np.stack([o.in_order(ids) for o in present]), samples=samples, seed=BOOTSTRAP_SEED)
    data.note(f"{label}: seeds were evaluated on different questions; their bootstrap resamples questions per seed")
    return bootstrap_ci([o.correct for o in present], samples=samples, seed=BOOTSTRAP_SEED)


def build_tables(data: ReportData) -> Tables:
    by_key: dict[tuple[str, str], list[EvalRecord]] = defaultdict(list)
    for rec in data.final_evals:
        by_key[(rec.model.method, rec.task)].append(rec)
    methods = sorted({m for m, _ in by_key}, key=method_sort_key)
    tasks = data.tasks()
    tables = Tables(
        methods=methods,
        tasks=tasks,
        roles={t: data.role(t) for t in tasks},
        bootstrap_samples=data.report_cfg.bootstrap_samples,
    )
    for (method, task), records in by_key.items():
        records = sorted(records, key=lambda r: _seed_key(r.model.seed))
        accs = [100.0 * r.accuracy for r in records]
        mean, std = mean_std(accs)
        tables.evals[(method, task)] = records
        lo, hi = _accuracy_interval(records, data, data.report_cfg.bootstrap_samples)
        tables.cells[(method, task)] = AccuracyCell(
            method, task, data.role(task), [r.model.seed for r in records], accs,
            [r.n for r in records], mean, std, 100.0 * lo, 100.0 * hi,
        )
    targets = [t for t in tasks if data.role(t) == "target"]
    for method in methods:
        if not targets or not all((method, t) in tables.cells for t in targets):
            continue
        per_seed: dict[int | None, list[float]] = defaultdict(list)
        for t in targets:
            cell = tables.cells[(method, t)]
            for seed, acc in zip(cell.seeds, cell.accuracies):
                per_seed[seed].append(acc)
        complete = [float(np.mean(v)) for v in per_seed.values() if len(v) == len(targets)]
        if complete:
            m, s = mean_std(complete)
            tables.target_avg[method] = (m, s, len(complete))
    for baseline in ABLATION_BASELINES:
        _compare(tables, data, [t for t in tasks if data.role(t) == "target"], baseline)
    _pad_cells(data, tables)
    return tables


def _compare(tables: Tables, data: ReportData, targets: list[str], base: str) -> None:
    """PRADA − ``base`` per task and over the targets, with a paired bootstrap interval.

    Only the seeds both models ran are compared (a seed that was bad for every method must not
    count against the model that has more seeds). Outcomes are joined by question id; a task where
    the two answered different questions, or where per-question outcomes are missing, gets no
    paired interval ("—") and a note with the reason (``ReportError`` from the statistics).
    """
    method = COMPARED[1]
    shared = [t for t in tables.tasks if (base, t) in tables.cells and (method, t) in tables.cells]
    common = sorted(
        set.intersection(*(set(tables.cells[(m, t)].seeds) for t in shared for m in (base, method))),
        key=_seed_key,
    ) if shared else []
    if not common:
        return

    def outcomes(m: str, task: str) -> list[QuestionOutcomes | None]:
        by_seed = {r.model.seed: r for r in tables.evals[(m, task)]}
        return [by_seed[s].outcomes() for s in common]

    samples = tables.bootstrap_samples
    comparison: dict[str, tuple[float, float, float]] = {}
    paired: dict[str, tuple[list[QuestionOutcomes | None], list[QuestionOutcomes | None]]] = {}
    for task in shared:
        pair = (outcomes(base, task), outcomes(method, task))
        try:
            a, b, _ = paired_matrices(*pair, what=f"{method_label(method)} − {method_label(base)} on {task}")
        except ReportError as e:
            data.note(f"no paired interval: {e}")
            continue
        paired[task] = pair
        lo, hi = bootstrap_diff_ci([pair[0]], [pair[1]], samples=samples)
        comparison[task] = (100.0 * float(b.mean() - a.mean()), 100.0 * lo, 100.0 * hi)
    if targets and all(t in paired for t in targets):
        delta = float(np.mean([comparison[t][0] for t in targets]))
        lo, hi = bootstrap_diff_ci([paired[t][0] for t in targets], [paired[t][1] for t in targets], samples=samples)
        comparison[TARGET_AVG] = (delta, 100.0 * lo, 100.0 * hi)
    if comparison:
        tables.comparison[base] = comparison
        tables.comparison_seeds[base] = common


def _pad_cells(data: ReportData, tables: Tables) -> None:
    if not data.features:
        data.note("no features/*.npz: proxy A-distance and t-SNE are skipped")
        return
    if data.source is None:
        data.note("the source task is unknown (no config.yaml): proxy A-distance is skipped")
        return
    values: dict[tuple[str, str], list[tuple[int | None, float]]] = defaultdict(list)
    for rec in data.features:
        if rec.model.snapshot_step is not None:
            continue
        if data.source not in rec.features:
            data.note(f"{rec.path}: no '{data.source}' (source) features; PAD skipped for {rec.model}")
            continue
        for domain, feats in rec.features.items():
            if domain == data.source:
                continue
            try:
                result = proxy_a_distance(
                    rec.features[data.source], feats, max_per_domain=data.report_cfg.feature_examples
                )
            except ValueError as e:
                data.note(f"{rec.path}: PAD {data.source}->{domain} skipped ({e})")
                continue
            values[(rec.model.method, domain)].append((rec.model.seed, result.pad))
    for (method, domain), pairs in values.items():
        pairs.sort(key=lambda p: _seed_key(p[0]))
        mean, std = mean_std([v for _, v in pairs])
        tables.pad[(method, domain)] = PadCell(method, domain, [s for s, _ in pairs], [v for _, v in pairs], mean, std)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _fmt_acc(cell: AccuracyCell) -> str:
    spread = f" ± {cell.std:.1f}" if cell.std is not None else ""
    return f"{cell.mean:.1f}{spread} [{cell.ci_low:.1f}, {cell.ci_high:.1f}]"


def _fmt_mean_std(mean: float, std: float | None, digits: int = 1) -> str:
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def _n_label(tables: Tables, task: str) -> str:
    ns = sorted({n for m in tables.methods if (m, task) in tables.cells for n in tables.cells[(m, task)].n_questions})
    if not ns:
        return "n=?"
    return f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}–{ns[-1]}"


def _header(tables: Tables, task: str) -> str:
    role = tables.roles[task]
    return f"{task} ({role}, {_n_label(tables, task)})" if role != "other" else f"{task} ({_n_label(tables, task)})"


def _method_row_label(tables: Tables, method: str) -> str:
    seeds = {s for t in tables.tasks if (method, t) in tables.cells for s in tables.cells[(method, t)].seeds}
    seeds.discard(None)
    return f"{method_label(method)} ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})" if seeds else method_label(method)


def _targets(tables: Tables) -> list[str]:
    return [t for t in tables.tasks if tables.roles[t] == "target"]


def accuracy_rows(tables: Tables) -> tuple[list[str], list[list[str]]]:
    header = ["method", *(_header(tables, t) for t in tables.tasks)]
    has_avg = bool(tables.target_avg)
    if has_avg:
        header.append("target avg")
    rows = []
    for m in tables.methods:
        row = [_method_row_label(tables, m)]
        row += [_fmt_acc(tables.cells[(m, t)]) if (m, t) in tables.cells else "—" for t in tables.tasks]
        if has_avg:
            row.append(_fmt_mean_std(*tables.target_avg[m][:2]) if m in tables.target_avg else "—")
        rows.append(row)
    return header, rows


def pad_rows(tables: Tables) -> tuple[list[str], list[list[str]]]:
    domains = sorted({d for _, d in tables.pad}, key=lambda d: (tables.roles.get(d) != "target", d))
    header = ["method", *(f"PAD source→{d}" for d in domains)]
    rows = []
    for m in sorted({m for m, _ in tables.pad}, key=method_sort_key):
        rows.append([method_label(m)] + [
            _fmt_mean_std(tables.pad[(m, d)].mean, tables.pad[(m, d)].std, 2) if (m, d) in tables.pad else "—"
            for d in domains
        ])
    return header, rows


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def caption(tables: Tables) -> str:
    return (
        "Accuracy in % on each task's evaluated split: mean ± sample std (ddof=1) over seeds "
        f"[percentile bootstrap 95% interval over questions and seeds, {tables.bootstrap_samples} "
        f"resamples, seed {BOOTSTRAP_SEED}]; n = questions evaluated. 'target avg' is the mean over "
        "target tasks per seed, then mean ± std over seeds."
    )


PAD_CAPTION = (
    "Proxy A-distance 2(1 − 2ε) between source and each domain's pooled question features "
    "(ε: held-out error of a logistic-regression domain classifier on a 50/50 split); "
    "lower means more domain-invariant features. Mean ± std over seeds."
)


def comparison_rows(tables: Tables) -> tuple[list[str], list[list[str]]]:
    """One row per baseline (PRADA − FT-CoT first), then the seed-to-seed noise of each model."""
    keys: list[str] = []
    for task in [*tables.tasks, TARGET_AVG]:
        if any(task in by_task for by_task in tables.comparison.values()):
            keys.append(task)
    header = ["", *[k if k == TARGET_AVG else f"{k} ({tables.roles[k]})" for k in keys]]
    method = COMPARED[1]
    rows = []
    for base, by_task in tables.comparison.items():
        cells = [f"{by_task[k][0]:+.1f} [{by_task[k][1]:+.1f}, {by_task[k][2]:+.1f}]" if k in by_task else "—"
                 for k in keys]
        seeds = tables.comparison_seeds[base]
        all_seeds = {s for m in (base, method) for t in keys if (m, t) in tables.cells for s in tables.cells[(m, t)].seeds}
        only = "" if set(seeds) == all_seeds else f", seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} only"
        rows.append([f"{method_label(method)} − {method_label(base)} (points{only})", *cells])
    noise = []
    for m in (*tables.comparison, method):
        if m in tables.target_avg and tables.target_avg[m][1] is not None:
            noise.append(f"{method_label(m)} {tables.target_avg[m][1]:.1f}")
    if noise:
        rows.append(["seed-to-seed std of target avg", *(["; ".join(noise)] + [""] * (len(keys) - 1))])
    return header, rows


def comparison_title() -> str:
    return f"{method_label(COMPARED[1])} vs {method_label(COMPARED[0])} and the ablations"


COMPARISON_CAPTION = (
    "Difference of mean accuracy in percentage points [95% paired bootstrap interval: questions "
    "resampled once for both models, seeds resampled per model]. An interval containing 0 means no "
    "difference the evaluation can detect. P-Tuning-CoT is PRADA without the adversary, DANN-CoT is "
    "PRADA without the prompt encoder."
)


TRAINING_HEADER = ["method", "seed", "steps", "wall (s)", "tokens/s", "last L_y", "last L_d", "last domain acc"]


def training_rows(data: ReportData) -> list[list[str]]:
    """Training cost and final losses of each run (from its ``summary.json`` and ``log.jsonl``)."""

    def fmt(v: object, digits: int = 3) -> str:
        return f"{v:.{digits}g}" if isinstance(v, (int, float)) else ("—" if v is None else str(v))

    rows = []
    for t in sorted(data.trains, key=lambda t: (method_sort_key(t.method), _seed_key(t.seed))):
        s = t.summary or {}
        last = t.log[-1] if t.log else {}
        rows.append([
            method_label(t.method), "—" if t.seed is None else str(t.seed),
            fmt(s.get("steps", last.get("step")), 6),
            fmt(s.get("wall_s"), 4) if t.summary is not None else "unfinished",
            fmt(s.get("tokens_per_s"), 4),
            fmt(last.get("L_y", (s.get("final") or {}).get("L_y"))),
            fmt(last.get("L_d", (s.get("final") or {}).get("L_d"))),
            fmt(last.get("domain_acc", (s.get("final") or {}).get("domain_acc"))),
        ])
    return rows


def to_markdown(tables: Tables, data: ReportData | None = None) -> str:
    parts = ["## Accuracy", "", md_table(*accuracy_rows(tables)), "", caption(tables), ""]
    if tables.pad:
        parts += ["## Proxy A-distance", "", md_table(*pad_rows(tables)), "", PAD_CAPTION, ""]
    if tables.comparison:
        parts += [f"## {comparison_title()}", "",
                  md_table(*comparison_rows(tables)), "", COMPARISON_CAPTION, ""]
    if data is not None and data.trains:
        parts += ["## Training cost", "", md_table(TRAINING_HEADER, training_rows(data)), "",
                  "Wall time of the training loop (no evaluation); tokens/s counts source and target tokens.", ""]
    return "\n".join(parts)


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(tables: Tables) -> str:
    out = [html_table(*accuracy_rows(tables)), f"<p class='caption'>{html.escape(caption(tables))}</p>"]
    if tables.comparison:
        out += [f"<h3>{html.escape(comparison_title())}</h3>",
                html_table(*comparison_rows(tables)), f"<p class='caption'>{html.escape(COMPARISON_CAPTION)}</p>"]
    if tables.pad:
        out += ["<h3>Proxy A-distance</h3>", html_table(*pad_rows(tables)), f"<p class='caption'>{html.escape(PAD_CAPTION)}</p>"]
    return "\n".join(out)


CSV_FIELDS = (
    "method", "dataset", "role", "n_seeds", "seeds", "n_questions", "accuracy_mean", "accuracy_std",
    "ci95_low", "ci95_high", "per_seed_accuracy", "pad_mean", "pad_std",
)


def _num(x: float | None, digits: int = 4) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def to_csv(tables: Tables) -> str:
    """Long format, one row per (method, dataset); accuracy in %, full precision."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    keys = sorted(
        set(tables.cells) | set(tables.pad),
        key=lambda k: (method_sort_key(k[0]), tables.tasks.index(k[1]) if k[1] in tables.tasks else 999, k[1]),
    )
    for method, task in keys:
        cell = tables.cells.get((method, task))
        pad = tables.pad.get((method, task))
        row: dict[str, Any] = {"method": method, "dataset": task, "role": tables.roles.get(task, "other")}
        if cell is not None:
            row.update(
                n_seeds=len(cell.seeds),
                seeds=";".join("" if s is None else str(s) for s in cell.seeds),
                n_questions=";".join(str(n) for n in sorted(set(cell.n_questions))),
                accuracy_mean=_num(cell.mean),
                accuracy_std=_num(cell.std),
                ci95_low=_num(cell.ci_low),
                ci95_high=_num(cell.ci_high),
                per_seed_accuracy=";".join(_num(a) for a in cell.accuracies),
            )
        if pad is not None:
            row.update(pad_mean=_num(pad.mean), pad_std=_num(pad.std))
        writer.writerow(row)
    return buf.getvalue()
