"""``codeblock-eval`` / ``python eval/run_benchmarks.py``: generate, execute and score; or compare runs.

Three modes (exactly one):

    # generate with a model, then execute (code execution must be allowed explicitly, checked before generation)
    codeblock-eval --model qwen2.5-coder-0.5b-instruct --benchmarks humaneval,humaneval+ \\
                   --output runs/qwen05 --allow_code_execution [--limit 20] [--resume] [--prompt_style chat]
    # evaluate existing samples: rows with task_id and solution (full program) or completion (appended to the prompt)
    codeblock-eval --samples samples.jsonl --benchmarks humaneval --output runs/ext --allow_code_execution
    # compare run directories (first one is the reference): markdown + PNG
    codeblock-eval --compare runs/base runs/codeblock runs/full_sft --output runs/report.md

Layout of an output directory::

    DIR/<benchmark>/samples.jsonl        one row per generated sample (shared by benchmarks with identical problems,
                                         e.g. humaneval and humaneval+: generated once, evaluated twice)
    DIR/<benchmark>/eval_results.jsonl   one row per executed sample (task_id, passed, status, ...)
    DIR/results.json                     summary, schema_version 1 (see codeblock_eval.report.results)

Exit codes: 0 success, 2 bad arguments (one ``codeblock-eval: error: ...`` line on stderr), 1 runtime failure.
"""

from __future__ import annotations

import gc
import hashlib
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from codeblock_eval.arguments import PROG, UsageError, _split_benchmarks, build_parser, validate


# --------------------------------------------------------------------------------------------- benchmarks
def _load_benchmarks(args) -> list[tuple[Any, list[Any]]]:
    from codeblock_eval.benchmarks.registry import get_benchmark

    loaded = []
    data_dir = Path(args.data_dir) if args.data_dir else None
    benchmarks = []
    for name in _split_benchmarks(args.benchmarks):  # all names first: a typo fails before any data is read
        try:
            benchmarks.append(get_benchmark(name))
        except (ValueError, KeyError) as exc:
            raise UsageError(str(exc).strip("'\"")) from None
    for bench in benchmarks:
        try:
            problems = list(bench.load_problems(data_dir))
        except FileNotFoundError as exc:
            raise UsageError(f"{bench.name}: {exc}") from None
        if args.limit:
            problems = problems[: args.limit]
        loaded.append((bench, problems))
    return loaded


def problem_key(problem: Any) -> str:
    """Identity of what a model is asked for one task: equal keys share one generation (humaneval / humaneval+).

    Prompts are compared stripped, as the model sees them (``build_prompt``): the HumanEval+ file only drops the
    leading blank lines of most HumanEval prompts. Tasks that really differ (HumanEval/115's docstring indentation)
    get their own generation.
    """
    p = problem
    fields = [p.task_id, p.prompt.strip(), p.instruction or "", p.entry_point, p.language,
              getattr(p, "response_prefix", None), *list(p.stop_sequences or [])]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def plan_generation(loaded: list[tuple[Any, list[Any]]]) -> dict[str, dict[str, Any]]:
    """For each benchmark: the problems it generates itself (``own``) and, per task, whose samples file to read.

    The first benchmark (in the order given) that asks a question owns its generation; later benchmarks asking the
    identical question reuse it, so humaneval,humaneval+ generate 164 + 1 samples, not 328.
    """
    owner_of: dict[str, str] = {}
    plan: dict[str, dict[str, Any]] = {}
    for bench, problems in loaded:
        own, source = [], {}
        for problem in problems:
            key = problem_key(problem)
            if key not in owner_of:
                owner_of[key] = bench.name
                own.append(problem)
            source[problem.task_id] = owner_of[key]
        plan[bench.name] = {"own": own, "source": source}
    return plan


def _dataset_info(bench) -> dict[str, Any]:
    try:
        return dict(bench.dataset_info())
    except Exception as exc:  # recorded, not fatal: the scores are still valid
        return {"name": bench.name, "error": str(exc)}


# --------------------------------------------------------------------------------------------- evaluation
def _evaluate(bench, problems, programs, *, run_dir: Path, args, extra: dict[str, Any]) -> dict[str, Any]:
    from codeblock_eval.execution.evaluate import evaluate_samples
    from codeblock_eval.report.results import benchmark_entry

    out_dir = run_dir / bench.name
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = {p.task_id for p in problems}
    attempted = {row["task_id"] for row in programs}
    summary = evaluate_samples(
        bench,
        problems,
        programs,
        out_dir=out_dir,
        parallel=args.parallel,
        timeout_scale=args.timeout_scale,
        allow_code_execution=True,
        resume=bool(getattr(args, "resume", False)),
    )
    extra = dict(extra)
    extra["n_tasks_without_samples"] = len(wanted - attempted)
    if wanted - attempted:
        # pass@1 is averaged over the tasks that have samples; say loudly that it is not the full benchmark.
        _log(f"warning: {bench.name}: {len(wanted - attempted)} of {len(wanted)} tasks have no samples; "
             "pass@1 covers only the tasks with samples")
    return benchmark_entry(summary, _dataset_info(bench), out_dir, run_dir, **extra)


def _run_samples(args) -> int:
    from codeblock_eval.generation.samples_io import read_samples, samples_to_programs
    from codeblock_eval.report.results import render_table, write_results

    loaded = _load_benchmarks(args)
    rows, torn = read_samples(args.samples, repair=False)  # never modify a file we did not write
    run_dir = Path(args.output)
    entries = {}
    for bench, problems in loaded:
        prompts = {p.task_id: p.prompt for p in problems}
        programs, skipped = samples_to_programs(rows, prompts, path=args.samples)
        counts = {k: v for k, v in dict(skipped).items() if v}
        if counts or torn:
            words = {"unknown_task": "samples for tasks outside the benchmark"}
            parts = [f"{v} {words.get(k, k.replace('_', ' '))}" for k, v in counts.items()] + (
                [f"{torn} torn last line dropped"] if torn else [])
            _log(f"warning: {bench.name}: {args.samples}: " + ", ".join(parts))
        if not rows:
            raise UsageError(f"{args.samples}: the samples file is empty")
        if not programs:
            raise UsageError(f"{args.samples}: no rows match the task_ids of {bench.name}")
        entries[bench.name] = _evaluate(
            bench, problems, programs, run_dir=run_dir, args=args,
            extra={"samples_file": str(Path(args.samples).resolve()), "samples_skipped": skipped, "samples_torn_lines": torn},
        )
    payload = write_results(run_dir, entries, model=None, adapter=None, generation={"samples": str(Path(args.samples).resolve())},
                            command=_command_line())
    render_table(payload)
    return 0


def _run_model(args) -> int:
    from codeblock_eval.generation import GenerationSettings, generate_samples, make_generator, resolve_model_path
    from codeblock_eval.generation.generate import refresh_samples
    from codeblock_eval.generation.samples_io import check_settings, counts_by_task, read_samples, samples_to_programs
    from codeblock_eval.report.results import render_table, write_results

    settings = GenerationSettings(
        model=args.model,
        adapter=str(Path(args.adapter)) if args.adapter else None,
        prompt_style=args.prompt_style,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p if args.temperature > 0 else 1.0,
        n_samples=args.n_samples,
        seed=args.seed,
        backend=args.backend,
        dtype=args.dtype,
    )
    loaded = _load_benchmarks(args)
    resolve_model_path(settings.model)  # unknown names fail here (exit 2), before any file is touched
    run_dir = Path(args.output)
    plan = plan_generation(loaded)
    # All checks on existing files happen before the (slow) model load.
    for bench, _ in loaded:
        path = run_dir / bench.name / "samples.jsonl"
        if path.exists() and path.stat().st_size > 0:
            if not args.resume:
                raise UsageError(f"{path} already exists: pass --resume to continue that run, or use a new --output")
            rows, _ = read_samples(path, repair=False)
            try:
                check_settings(rows, settings.hash(), path)
            except ValueError as exc:
                raise UsageError(str(exc)) from None

    generator = None
    families: dict[str, Any] = {}
    for bench, _ in loaded:
        own = plan[bench.name]["own"]
        path = run_dir / bench.name / "samples.jsonl"
        shared: dict[str, int] = {}
        for source in plan[bench.name]["source"].values():
            if source != bench.name:
                shared[source] = shared.get(source, 0) + 1
        info: dict[str, Any] = {"generated_tasks": len(own), "shared_tasks": shared}
        if own:
            info["samples_file"] = f"{bench.name}/samples.jsonl"
            rows, _ = read_samples(path, repair=False)
            have = counts_by_task(rows) if rows else {}
            missing = sum(max(0, settings.n_samples - have.get(p.task_id, 0)) for p in own)
            if missing and generator is None:
                _log(f"loading {settings.model}" + (f" + adapter {settings.adapter}" if settings.adapter else ""))
                generator = make_generator(settings, threads=args.threads, dynamic_slots=args.dynamic_slots)
            if missing:
                info["stats"] = generate_samples(own, generator, path, batch_size=args.batch_size).to_dict()
            else:
                tokenizer = getattr(generator, "tokenizer", None)
                if tokenizer is None and settings.prompt_style == "chat":
                    from codeblock_eval.generation.hf_backend import load_tokenizer

                    tokenizer = load_tokenizer(settings)
                info["stats"] = {"n_generated": 0, "n_skipped_existing": sum(min(v, settings.n_samples) for v in have.values()),
                                 "n_rederived": refresh_samples(own, path, settings.prompt_style, tokenizer)}
        families[bench.name] = info
    device = getattr(generator, "device", None)
    # 0 when refilling slots were asked for but do not apply (sampling, sliding-window models).
    dynamic_used = getattr(generator, "dynamic_slots", args.dynamic_slots)
    del generator
    gc.collect()  # free the model before starting test processes

    generation = {
        "settings": settings.to_dict(),
        "settings_hash": settings.hash(),
        "batch_size": args.batch_size,
        "dynamic_slots": dynamic_used,
        "threads": args.threads,
        "device": device,
        "limit": args.limit,
        "families": families,
    }
    entries = {}
    if not args.generation_only:
        cache: dict[str, list[dict[str, Any]]] = {}
        for bench, problems in loaded:
            source = plan[bench.name]["source"]
            rows = []
            for owner in dict.fromkeys(source.values()):
                if owner not in cache:
                    cache[owner], _ = read_samples(run_dir / owner / "samples.jsonl")
                rows += [r for r in cache[owner] if source.get(r["task_id"]) == owner]
            rows = [row for row in rows if int(row.get("sample_index", 0)) < settings.n_samples]
            programs, _ = samples_to_programs(rows, {p.task_id: p.prompt for p in problems}, path=f"{run_dir}/*/samples.jsonl")
            entries[bench.name] = _evaluate(bench, problems, programs, run_dir=run_dir, args=args,
                                            extra={"samples_from": families[bench.name]})
    payload = write_results(run_dir, entries, model=settings.model, adapter=settings.adapter, generation=generation,
                            command=_command_line())
    if entries:
        render_table(payload)
    else:
        _log(f"samples written under {run_dir} (generation only)")
    return 0


def _run_compare(args) -> int:
    from codeblock_eval.report.compare import compare

    report = compare(args.compare, args.output)
    _log(f"wrote {report['markdown']} and {report['png']}")
    return 0


def _command_line() -> str:
    return " ".join(shlex.quote(part) for part in [PROG, *sys.argv[1:]])


def _log(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        mode = validate(args)
        if mode == "list_benchmarks":
            from codeblock_eval.benchmarks.registry import list_benchmarks

            print("\n".join(list_benchmarks()))
            return 0
        if mode == "compare":
            return _run_compare(args)
        if mode == "samples":
            return _run_samples(args)
        return _run_model(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # Errors with an actionable message from our own modules are still one line; tracebacks only on demand.
        from codeblock_eval.generation.samples_io import SamplesFileError

        known: tuple[type[BaseException], ...] = (SamplesFileError,)
        try:
            from codeblock.models import ModelResolutionError
            from codeblock_eval.generation import GenerationError

            known += (GenerationError, ModelResolutionError)
        except ImportError:  # pragma: no cover
            pass
        if isinstance(exc, known):
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
