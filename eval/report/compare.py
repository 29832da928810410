"""``--compare RUN_DIR...``: a markdown report and a PNG bar chart comparing runs, paired by task.

For every benchmark the report gives each run's pass@1 (from ``results.json``), a seeded percentile-bootstrap 95%
CI over tasks, the difference to the FIRST run with a paired bootstrap CI, and the exact McNemar test on the tasks
both runs attempted (per-task outcome = sample 0 passed). McNemar is the right test for paired binary outcomes on
the same tasks; unpaired tests would ignore that most tasks are solved (or failed) by both runs.

    >>> mcnemar_exact(0, 6)   # 6 discordant tasks, all favouring one run
    0.03125

Pure module: numpy + matplotlib (Agg) only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from codeblock_eval.report.results import EVAL_RESULTS_FILE, load_results

N_BOOTSTRAP = 2000
SEED = 0


@dataclass
class Run:
    label: str
    path: Path
    results: dict[str, Any]
    # benchmark -> task_id -> list of booleans ordered by sample_index
    outcomes: dict[str, dict[str, list[bool]]] = field(default_factory=dict)

    def pass_at_1(self, benchmark: str) -> float | None:
        entry = self.results.get("benchmarks", {}).get(benchmark)
        return None if entry is None else float(entry["pass@1"])


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of ``b`` vs ``c`` discordant pairs at p = 0.5.

    >>> mcnemar_exact(3, 3)
    1.0
    """
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2.0 * tail)


def bootstrap_ci(values: Sequence[float], *, n_boot: int = N_BOOTSTRAP, seed: int = SEED) -> tuple[float, float]:
    """Percentile 95% CI of the mean of ``values`` (one value per task), resampling tasks with replacement."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(n_boot, data.size))
    means = data[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _read_outcomes(path: Path) -> dict[str, list[bool]]:
    rows: dict[str, list[tuple[int, bool]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        index = int(row.get("sample_index", row.get("completion_id", len(rows.get(row["task_id"], [])))))
        rows.setdefault(str(row["task_id"]), []).append((index, bool(row["passed"])))
    return {task: [passed for _, passed in sorted(items)] for task, items in rows.items()}


def load_run(path: str | Path, label: str | None = None) -> Run:
    path = Path(path)
    results = load_results(path)
    run = Run(label=label or path.name, path=path, results=results)
    for name, entry in results.get("benchmarks", {}).items():
        eval_path = path / entry.get("eval_results", f"{name}/{EVAL_RESULTS_FILE}")
        if eval_path.exists():
            run.outcomes[name] = _read_outcomes(eval_path)
    return run


def _labels(paths: Sequence[Path]) -> list[str]:
    labels = [p.name for p in paths]
    if len(set(labels)) < len(labels):  # same folder name under different parents: use more of the path
        labels = [f"{p.parent.name}/{p.name}" for p in paths]
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({i})" for i, label in enumerate(labels, start=1)]
    return labels


def compare(run_dirs: Sequence[str | Path], output: str | Path, *, n_boot: int = N_BOOTSTRAP, seed: int = SEED) -> dict[str, Any]:
    """Write ``output`` (markdown) and ``output`` with suffix ``.png``; return the numbers behind them."""
    paths = [Path(p) for p in run_dirs]
    runs = [load_run(p, label) for p, label in zip(paths, _labels(paths))]
    benchmarks = sorted({name for run in runs for name in run.results.get("benchmarks", {})})
    common = [b for b in benchmarks if all(run.pass_at_1(b) is not None for run in runs)]
    base = runs[0]
    stats: dict[str, list[dict[str, Any]]] = {}
    for bench in benchmarks:
        rows = []
        base_outcomes = base.outcomes.get(bench, {})
        for run in runs:
            score = run.pass_at_1(bench)
            outcomes = run.outcomes.get(bench, {})
            per_task = [float(np.mean(v)) for _, v in sorted(outcomes.items()) if v]
            row: dict[str, Any] = {"run": run.label, "pass@1": score, "n_tasks": len(per_task)}
            row["ci"] = bootstrap_ci(per_task, n_boot=n_boot, seed=seed) if per_task else None
            if run is not base and score is not None and base.pass_at_1(bench) is not None:
                shared = sorted(set(base_outcomes) & set(outcomes))
                a = [base_outcomes[t][0] for t in shared]
                b = [outcomes[t][0] for t in shared]
                only_base = sum(1 for x, y in zip(a, b) if x and not y)
                only_run = sum(1 for x, y in zip(a, b) if y and not x)
                diffs = [float(np.mean(outcomes[t])) - float(np.mean(base_outcomes[t])) for t in shared]
                row.update(
                    delta=score - float(base.pass_at_1(bench)),
                    delta_ci=bootstrap_ci(diffs, n_boot=n_boot, seed=seed) if diffs else None,
                    paired_tasks=len(shared),
                    only_first=only_base,
                    only_this=only_run,
                    p_mcnemar=mcnemar_exact(only_base, only_run) if shared else None,
                )
            rows.append(row)
        stats[bench] = rows
    averages = {run.label: (float(np.mean([run.pass_at_1(b) for b in common])) if common else None) for run in runs}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    png = output.with_suffix(".png")
    _plot(runs, benchmarks, stats, png)
    output.write_text(_markdown(runs, benchmarks, common, stats, averages, png, n_boot, seed), encoding="utf-8")
    return {"benchmarks": stats, "average": averages, "common_benchmarks": common, "png": str(png), "markdown": str(output)}


def _pct(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def _ci(ci: tuple[float, float] | None) -> str:
    return "—" if not ci else f"[{_pct(ci[0])}, {_pct(ci[1])}]"


def _markdown(runs, benchmarks, common, stats, averages, png: Path, n_boot: int, seed: int) -> str:
    lines = ["# codeblock-eval comparison", ""]
    lines.append("| run | model | adapter | " + " | ".join(benchmarks) + " | average |")
    lines.append("|---|---|---|" + "---:|" * (len(benchmarks) + 1))
    for run in runs:
        cells = [_pct(run.pass_at_1(b)) for b in benchmarks]
        adapter = run.results.get("adapter") or "—"
        lines.append(f"| {run.label} | {run.results.get('model') or '—'} | {adapter} | " + " | ".join(cells) + f" | {_pct(averages[run.label])} |")
    lines += [
        "",
        f"pass@1 in %. Average over the benchmarks every run has ({', '.join(common) or 'none'}).",
        "",
        f"![pass@1 by benchmark]({png.name})",
        "",
    ]
    for bench in benchmarks:
        lines += [f"## {bench}", ""]
        lines.append("| run | pass@1 | 95% CI | tasks | Δ vs first | Δ 95% CI | first only / this only | McNemar p |")
        lines.append("|---|---:|---|---:|---:|---|---:|---:|")
        for row in stats[bench]:
            if "delta" in row:
                extra = (
                    f"{100 * row['delta']:+.1f} | {_ci(row['delta_ci'])} | {row['only_first']} / {row['only_this']} | "
                    + ("—" if row["p_mcnemar"] is None else f"{row['p_mcnemar']:.4g}")
                )
            else:
                extra = "— | — | — | —"
            lines.append(f"| {row['run']} | {_pct(row['pass@1'])} | {_ci(row['ci'])} | {row['n_tasks']} | {extra} |")
        dataset = (runs[0].results["benchmarks"].get(bench) or {}).get("dataset") or {}
        if dataset:
            lines += ["", f"Dataset {dataset.get('name', bench)} {dataset.get('version', '')} sha256 {str(dataset.get('sha256', ''))[:16]}."]
        lines.append("")
    lines += [
        "## Method",
        "",
        f"- CIs: percentile bootstrap over tasks, {n_boot} resamples, seed {seed}; Δ CIs resample the paired per-task differences.",
        "- McNemar: exact two-sided binomial test on discordant tasks (solved by exactly one of the two runs, sample 0), vs the first run.",
        "- pass@1 comes from each run's results.json; per-task outcomes from its eval_results.jsonl.",
        "",
        "| run | date | generation | versions |",
        "|---|---|---|---|",
    ]
    for run in runs:
        gen = run.results.get("generation") or {}
        settings = gen.get("settings", gen)
        brief = ", ".join(f"{k}={settings[k]}" for k in ("prompt_style", "max_new_tokens", "temperature", "backend") if k in settings)
        versions = run.results.get("versions", {})
        vbrief = ", ".join(f"{k} {versions[k]}" for k in ("codeblock", "torch", "transformers") if versions.get(k))
        lines.append(f"| {run.label} | {run.results.get('date', '—')} | {brief or '—'} | {vbrief or '—'} |")
    return "\n".join(lines) + "\n"


def _plot(runs, benchmarks, stats, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_runs = max(1, len(runs))
    width = 0.8 / n_runs
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(benchmarks) * max(1, n_runs / 2) + 2), 4.5), dpi=120)
    x = np.arange(len(benchmarks))
    colors = plt.get_cmap("tab10").colors
    for i, run in enumerate(runs):
        heights, errors = [], [[], []]
        for bench in benchmarks:
            row = stats[bench][i]
            value = row["pass@1"]
            heights.append(100 * value if value is not None else 0.0)
            ci = row["ci"]
            if value is not None and ci and not math.isnan(ci[0]):
                errors[0].append(max(0.0, 100 * (value - ci[0])))
                errors[1].append(max(0.0, 100 * (ci[1] - value)))
            else:
                errors[0].append(0.0)
                errors[1].append(0.0)
        positions = x - 0.4 + width * (i + 0.5)
        bars = ax.bar(positions, heights, width, yerr=errors, capsize=3, label=run.label, color=colors[i % len(colors)])
        for bar, bench, err_high in zip(bars, benchmarks, errors[1]):
            value = stats[bench][i]["pass@1"]
            label = "n/a" if value is None else f"{100 * value:.1f}"
            centre = bar.get_x() + bar.get_width() / 2
            if bar.get_height() >= 8:  # inside the bar, clear of the error bar caps
                ax.text(centre, bar.get_height() / 2, label, ha="center", va="center", fontsize=8, color="white",
                        fontweight="bold", rotation=90 if n_runs > 4 else 0)
            else:
                ax.annotate(label, (centre, bar.get_height() + err_high), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(benchmarks)
    ax.set_ylabel("pass@1 (%)")
    top = max([100 * (r["ci"][1] if r["ci"] else (r["pass@1"] or 0)) for rows in stats.values() for r in rows] + [1.0])
    ax.set_ylim(0, min(105.0, top * 1.15 + 5))
    ax.set_title("pass@1 by benchmark (error bars: bootstrap 95% CI)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(n_runs, 4), frameon=False)
    fig.tight_layout()
    fig.savefig(png, metadata={"Software": None})  # no version string: same inputs -> same bytes
    plt.close(fig)
