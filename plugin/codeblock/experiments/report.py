"""The experiment's report: the evaluation harness's comparison plus what each arm cost and supervised.

``report.md`` = the ``codeblock-eval --compare`` report (pass@1 per benchmark and on average, bootstrap CIs, exact
McNemar vs the baseline arm, PNG) preceded by an arm table: supervision policy, rows trained, supervised share of
response tokens, training wall time, peak memory and final loss, and, with several seeds, mean ± std per arm.
``summary.json`` holds the same numbers for scripts. With an untrained arm (``train: false``), a second comparison
against it (``report_vs_base.md``, ``summary.json`` ``compare_vs_base``) tells an arm that learned something apart from
one that merely moved the model less than full-token SFT did.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from codeblock.experiments.config import ExperimentConfig


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def arm_facts(out: Path, label: str) -> dict:
    """Training-side facts of one arm-seed (empty for the untrained base model)."""
    stats = _read_json(out / "arms" / label / "prepared" / "stats.json")
    metrics = _read_json(out / "arms" / label / "adapter" / "train_metrics.json")
    if not stats and not metrics:
        return {}
    return {
        "supervision": stats.get("supervision") or (stats.get("config") or {}).get("supervision"),
        "pair_selector": (stats.get("pair_selection") or {}).get("method_used"),
        "rows": stats.get("n_kept"),
        "supervised_fraction": stats.get("supervised_fraction"),
        "supervised_fraction_with_eos": stats.get("supervised_fraction_with_eos"),
        "train_wall_s": metrics.get("train_wall_s"),
        "peak_memory_mb": metrics.get("peak_memory_mb"),
        "peak_memory_kind": metrics.get("peak_memory_kind"),
        "global_step": metrics.get("global_step"),
        "train_loss": metrics.get("train_loss"),
    }


def _fmt(value, spec: str, scale: float = 1.0) -> str:
    if value is None:
        return "—"
    return format(value * scale if scale != 1.0 else value, spec)


def _arm_table(rows: list[dict], benchmarks: list[str]) -> list[str]:
    head = ["run", "supervision", "pairs kept → rows", "supervised % (+EOS)", "train s", "peak MB", "loss"]
    lines = ["| " + " | ".join(head + benchmarks + ["average"]) + " |", "|---|---|---:|---:|---:|---:|---:|"
             + "---:|" * (len(benchmarks) + 1)]
    for r in rows:
        f = r["facts"]
        sup = "—" if f.get("supervised_fraction") is None else (
            f"{100 * f['supervised_fraction']:.2f} ({100 * (f.get('supervised_fraction_with_eos') or 0):.2f})")
        cells = [r["label"], f.get("supervision") or ("none (base model)" if not f else "—"),
                 _fmt(f.get("rows"), "d"), sup, _fmt(f.get("train_wall_s"), ".0f"), _fmt(f.get("peak_memory_mb"), ".0f"),
                 _fmt(f.get("train_loss"), ".3f")]
        cells += [_fmt(r["pass@1"].get(b), ".1f", 100) for b in benchmarks] + [_fmt(r["average"], ".1f", 100)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _seed_table(rows: list[dict], cfg: ExperimentConfig) -> list[str]:
    lines = ["| arm | seeds | average pass@1 mean ± std |", "|---|---:|---:|"]
    for arm in cfg.arms:
        values = [r["average"] for r in rows if r["arm"] == arm.name and r["average"] is not None]
        if values:
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            lines.append(f"| {arm.name} | {len(values)} | {100 * statistics.mean(values):.1f} ± {100 * sd:.1f} |")
    return lines


def finished_eval_dirs(cfg: ExperimentConfig, out: Path) -> dict[str, Path]:
    """Evaluations already finished in ``out`` (marker and results present), by run label, for every arm and seed."""
    labels = [a.name if not a.train else f"{a.name}-s{seed}" for a in cfg.arms for seed in cfg.seeds]
    found = {}
    for label in dict.fromkeys(labels):
        folder = Path(out) / "eval" / label
        if (folder / ".step.json").is_file() and (folder / "results.json").is_file():
            found[label] = folder
    return found


def write_report(cfg: ExperimentConfig, out: Path, eval_dirs: dict[str, Path]) -> dict:
    from codeblock_eval.report.compare import compare

    out = Path(out)
    first = cfg.baseline_arm
    arm_names = [a.name for a in cfg.arms]
    order = sorted(eval_dirs, key=lambda label: (_arm_of(label, cfg) != first, arm_names.index(_arm_of(label, cfg)),
                                                 label))
    # file names, not the paths written to: summary.json must not depend on where the folder lies
    numbers = {**compare([eval_dirs[label] for label in order], out / "report.md"),
               "markdown": "report.md", "png": "report.png"}
    compare_md = (out / "report.md").read_text(encoding="utf-8")
    common = numbers["common_benchmarks"]
    rows = []
    for label in order:
        results = _read_json(eval_dirs[label] / "results.json")
        p1 = {b: (results.get("benchmarks", {}).get(b) or {}).get("pass@1") for b in cfg.benchmarks}
        got = [p1[b] for b in common if p1.get(b) is not None]
        rows.append({"label": label, "arm": _arm_of(label, cfg), "facts": arm_facts(out, label), "pass@1": p1,
                     "average": (sum(got) / len(got)) if got and len(got) == len(common) else None})
    lines = [f"# Experiment {cfg.name}", "",
             f"Base model `{cfg.base_model}`; benchmarks {', '.join(cfg.benchmarks)}; seeds {cfg.seeds}; "
             f"McNemar and Δ are against `{order[0]}`.", "",
             *_arm_table(rows, list(cfg.benchmarks)), "",
             "supervised % = supervised response tokens / response tokens of the rows written by `codeblock prepare` "
             "(EOS counted apart); peak MB = CUDA allocator peak on GPU, process peak RSS on CPU.", ""]
    if len(cfg.seeds) > 1:
        lines += ["## Over seeds", "", *_seed_table(rows, cfg), ""]
    lines += [compare_md.replace("# codeblock-eval comparison", "## Evaluation (codeblock-eval --compare)", 1)]
    untrained = [label for label in order if label in {a.name for a in cfg.arms if not a.train}]
    vs_base = None
    if untrained and len(order) > 1:
        base_order = untrained[:1] + [label for label in order if label != untrained[0]]
        vs_base = {**compare([eval_dirs[label] for label in base_order], out / "report_vs_base.md"),
                   "markdown": "report_vs_base.md", "png": "report_vs_base.png"}
        text = (out / "report_vs_base.md").read_text(encoding="utf-8")
        lines += ["", text.replace("# codeblock-eval comparison",
                                   f"## Against the untrained model (`{untrained[0]}`): did an arm learn anything?", 1)]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    summary = {"experiment": cfg.name, "order": order, "runs": rows, "compare": numbers, "compare_vs_base": vs_base}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    _print_table(rows, list(cfg.benchmarks))
    return summary


def _arm_of(label: str, cfg: ExperimentConfig) -> str:
    names = {a.name for a in cfg.arms}
    if label in names:
        return label
    base = label.rsplit("-s", 1)[0]
    return base if base in names else label


def _print_table(rows: list[dict], benchmarks: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="experiment: pass@1 (%) and cost per arm")
    for col in ["run", "supervised %", "train s", "peak MB", *benchmarks, "average"]:
        table.add_column(col, justify="left" if col == "run" else "right")
    for r in rows:
        f = r["facts"]
        table.add_row(r["label"], _fmt(f.get("supervised_fraction"), ".2f", 100), _fmt(f.get("train_wall_s"), ".0f"),
                      _fmt(f.get("peak_memory_mb"), ".0f"), *[_fmt(r["pass@1"].get(b), ".1f", 100) for b in benchmarks],
                      _fmt(r["average"], ".1f", 100))
    Console(stderr=True).print(table)
