"""`codeblock experiment CONFIG.yaml --out DIR`: prepare -> train -> eval for every arm and seed, then one report.

Each step runs as its own subprocess (``codeblock prepare``, ``codeblock train``, ``codeblock-eval``), so a crash in
one arm names its log and the step's peak memory is its own. A finished step leaves ``.step.json`` with a fingerprint
of everything it depends on (its config, the data hash, the upstream steps' fingerprints): a rerun skips steps whose
fingerprint matches, redoes steps whose inputs changed, and resumes an interrupted evaluation (``--resume``).

Layout under DIR::

    experiment.yaml              resolved config          data/train.jsonl, data/mix.json   training mix + manifest
    reference/s42/               Token-Cleaning reference (subset.jsonl, adapter/, merged/)
    arms/<arm>-s42/prepared/     `codeblock prepare` output (stats.json: supervised fraction, ...)
    arms/<arm>-s42/adapter/      LoRA adapter + train_metrics.json (wall time, peak memory, loss)
    eval/<arm>-s42/              codeblock-eval run (results.json, eval_results.jsonl)
    report.md, report.png, summary.json

    $ codeblock experiment recipes/experiments/qwen0.5b_cpu_headline.yaml --out runs/headline
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from codeblock.config import ConfigError
from codeblock.experiment_config import ArmSpec, ExperimentConfig, fingerprint

MARKER = ".step.json"


class ExperimentError(RuntimeError):
    """A step failed; the message names the step and its log."""


def _log(msg: str) -> None:
    print(f"[experiment {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _done(folder: Path, fp: str) -> bool:
    try:
        return json.loads((folder / MARKER).read_text())["fingerprint"] == fp
    except (OSError, ValueError, KeyError):
        return False


def _mark(folder: Path, fp: str, step: str, wall: float) -> None:
    (folder / MARKER).write_text(json.dumps({"step": step, "fingerprint": fp, "wall_s": round(wall, 3),
                                             "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1) + "\n")


def _run(cmd: list[str], log: Path, step: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"})
    if rc != 0:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-15:])
        raise ExperimentError(f"step {step} failed (exit {rc}); log: {log}\n{tail}")


class Runner:
    def __init__(self, cfg: ExperimentConfig, out: str | Path, *, data_dir: str | Path | None = None,
                 python: str = sys.executable, dry_run: bool = False):
        self.cfg, self.out, self.python, self.dry_run = cfg, Path(out), python, dry_run
        self.data_dir = Path(data_dir or os.environ.get("CODEBLOCK_DATA_DIR") or "data")
        self.plan: list[dict] = []

    # -------------------------------------------------------------- step machinery
    def step(self, name: str, folder: Path, fp: str, action, *, keep_partial: bool = False) -> None:
        if _done(folder, fp):
            self.plan.append({"step": name, "status": "done"})
            return
        self.plan.append({"step": name, "status": "run"})
        if self.dry_run:
            return
        if folder.exists() and not keep_partial:
            shutil.rmtree(folder)  # inputs changed or the step died midway: start clean
        folder.mkdir(parents=True, exist_ok=True)
        _log(f"{name} ...")
        t0 = time.perf_counter()
        action()
        _mark(folder, fp, name, time.perf_counter() - t0)
        _log(f"{name} done in {time.perf_counter() - t0:.0f} s")

    def codeblock_cli(self, *args: str) -> list[str]:
        return [self.python, "-m", "codeblock.cli", *args]

    # -------------------------------------------------------------- steps
    def data(self) -> tuple[Path, str]:
        spec, folder = self.cfg.data, self.out / "data"
        train = folder / "train.jsonl"
        if spec.path:
            from codeblock.hygiene.manifest import sha256_file

            return Path(spec.path), sha256_file(Path(spec.path))
        fp = fingerprint("data", spec.__dict__, str(self.data_dir.resolve()))

        def build():
            from codeblock.experiment_data import build_training_mix

            manifest = build_training_mix(self.data_dir, list(spec.sources), train, decontaminate=spec.decontaminate,
                                          limit_per_source=spec.limit_per_source)
            (folder / "mix.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

        self.step("data", folder, fp, build)
        digest = json.loads((folder / "mix.json").read_text())["sha256"] if (folder / "mix.json").exists() else "pending"
        return train, digest

    def reference(self, train: Path, data_fp: str, seed: int) -> tuple[str, str]:
        folder = self.out / "reference" / f"s{seed}"
        ref = self.cfg.reference
        training = {**self.cfg.training_config(None), **ref.training}
        fp = fingerprint("reference", data_fp, seed, ref.fraction, training, self.cfg.base_model,
                         self._shared_loss_reduction())

        def build():
            rows = train.read_text(encoding="utf-8").splitlines()
            k = max(1, round(ref.fraction * len(rows)))
            keep = sorted(random.Random(seed).sample(range(len(rows)), k))
            (folder / "subset.jsonl").write_text("".join(rows[i] + "\n" for i in keep), encoding="utf-8")
            yaml_path = self._train_yaml(folder, training, seed, data_path=folder / "subset.jsonl",
                                         supervision="full", sparse_loss=False, merged=folder / "merged")
            _run(self.codeblock_cli("train", "--config", str(yaml_path)), folder / "train.log", f"reference s{seed}")

        self.step(f"reference s{seed}", folder, fp, build)
        return str(folder / "merged"), fp

    def _shared_loss_reduction(self) -> str:
        """The experiment-level loss_reduction (CodeBlockConfig's default when the YAML leaves it out)."""
        from codeblock.config import CodeBlockConfig

        return self.cfg.codeblock.get("loss_reduction", CodeBlockConfig().loss_reduction)

    def _train_yaml(self, folder: Path, training: dict, seed: int, *, supervision: str, sparse_loss: bool,
                    data_path: Path | None = None, prepared: Path | None = None, merged: Path | None = None,
                    loss_reduction: str | None = None) -> Path:
        """``folder/train.yaml`` for ``codeblock train``; the adapter goes to ``folder/adapter``."""
        import yaml

        conf = {**training, "model_name_or_path": self.cfg.base_model, "output_dir": str(folder / "adapter"),
                "seed": seed, "supervision": supervision, "sparse_loss": sparse_loss,
                # the one CodeBlockConfig knob the trainer itself applies (the arm's, else the experiment's)
                "codeblock": {"loss_reduction": loss_reduction or self._shared_loss_reduction()}}
        if data_path:
            conf["data_path"] = str(data_path)
        if prepared:
            conf["prepared_path"] = str(prepared)
        if merged:
            conf["merged_output_dir"] = str(merged)
        path = folder / "train.yaml"
        path.write_text(yaml.safe_dump(conf, sort_keys=True), encoding="utf-8")
        return path

    def arm(self, arm: ArmSpec, seed: int, train: Path, data_fp: str, reference: tuple[str, str] | None) -> Path:
        label = f"{arm.name}-s{seed}"
        folder = self.out / "arms" / label
        config = self.cfg.codeblock_config(arm, seed=seed, reference_model=reference[0] if reference else None)
        knobs = config.to_dict()
        if reference and knobs.get("reference_model") == reference[0]:
            # By what the reference is, not where it lies: moving the experiment folder must not redo every arm.
            knobs["reference_model"] = f"reference-step:{reference[1]}"
        prep_fp = fingerprint("prepare", data_fp, self.cfg.base_model, knobs)

        def prepare():
            (folder / "codeblock.yaml").write_text(config.to_yaml(), encoding="utf-8")
            _run(self.codeblock_cli("prepare", "--data", str(train), "--model", self.cfg.base_model, "--out",
                                    str(folder / "prepared"), "--config", str(folder / "codeblock.yaml"), "--quiet"),
                 folder / "prepare.log", f"prepare {label}")

        self.step(f"prepare {label}", folder / "prepared", prep_fp, prepare)
        training = self.cfg.training_config(arm)
        train_fp = fingerprint("train", prep_fp, training, seed, arm.sparse_loss)

        def fit():
            yaml_path = self._train_yaml(folder, training, seed, supervision=arm.supervision,
                                         sparse_loss=arm.sparse_loss, prepared=folder / "prepared",
                                         loss_reduction=config.loss_reduction)
            _run(self.codeblock_cli("train", "--config", str(yaml_path)), folder / "train.log", f"train {label}")

        self.step(f"train {label}", folder / "adapter", train_fp, fit)
        return self.evaluate(label, folder / "adapter", train_fp)

    def evaluate(self, label: str, adapter: Path | None, upstream_fp: str) -> Path:
        ev = self.cfg.eval_config()
        folder = self.out / "eval" / label
        fp = fingerprint("eval", upstream_fp, self.cfg.base_model, list(self.cfg.benchmarks), ev)
        cmd = [self.python, "-m", "codeblock_eval.cli", "--model", self.cfg.base_model, "--benchmarks",
               ",".join(self.cfg.benchmarks), "--output", str(folder), "--allow_code_execution", "--resume",
               "--batch_size", str(ev["batch_size"]), "--max_new_tokens", str(ev["max_new_tokens"]),
               "--prompt_style", ev["prompt_style"], "--timeout_scale", str(ev["timeout_scale"]),
               "--backend", ev["backend"], "--dynamic_slots", str(ev["dynamic_slots"])]
        if adapter is not None:
            cmd += ["--adapter", str(adapter)]
        if ev["limit"]:
            cmd += ["--limit", str(ev["limit"])]
        if ev["parallel"]:
            cmd += ["--parallel", str(ev["parallel"])]
        if self.data_dir.is_dir():
            cmd += ["--data_dir", str(self.data_dir)]
        # An interrupted evaluation keeps its samples and resumes; one whose inputs changed starts over.
        stale = (folder / MARKER).exists() and not _done(folder, fp)
        if stale and not self.dry_run:
            shutil.rmtree(folder)
        self.step(f"eval {label}", folder, fp, lambda: _run(cmd, self.out / "logs" / f"eval-{label}.log",
                                                            f"eval {label}"), keep_partial=True)
        return folder

    # -------------------------------------------------------------- whole run
    def run(self, only: list[str] | None = None) -> dict:
        import yaml

        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "experiment.yaml").write_text(yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
        train, data_fp = self.data()
        arms = [a for a in self.cfg.arms if not only or a.name in only]
        eval_dirs: dict[str, Path] = {}
        for seed in self.cfg.seeds:
            # Token Cleaning's reference is trained here unless the arm names its own (codeblock.reference_model).
            ref = self.reference(train, data_fp, seed) if any(
                a.train and a.supervision == "excess_tokens"
                and not {**self.cfg.codeblock, **a.codeblock}.get("reference_model") for a in arms) else None
            for arm in arms:
                if not arm.train:
                    if seed == self.cfg.seeds[0]:  # greedy decoding of the untrained model: one run covers all seeds
                        eval_dirs[arm.name] = self.evaluate(arm.name, None, fingerprint("base", self.cfg.base_model))
                    continue
                eval_dirs[f"{arm.name}-s{seed}"] = self.arm(arm, seed, train, data_fp, ref)
        if self.dry_run:
            return {"plan": self.plan}
        from codeblock.experiment_report import write_report

        return write_report(self.cfg, self.out, eval_dirs)


# ------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML (see recipes/experiments/)")
    parser.add_argument("--out", required=True, help="experiment folder (reruns skip finished steps)")
    parser.add_argument("--data_dir", "--data-dir", dest="data_dir",
                        help="data mirror laid out like shared/data (default: $CODEBLOCK_DATA_DIR)")
    parser.add_argument("--arms", help="comma-separated subset of arm names to run")
    parser.add_argument("--dry-run", action="store_true", help="print which steps would run or be skipped")


def run(args: argparse.Namespace) -> int:
    from codeblock.experiment_data import MixError

    try:
        cfg = ExperimentConfig.from_yaml(args.config)
        only = [a.strip() for a in args.arms.split(",")] if args.arms else None
        unknown = sorted(set(only or []) - {a.name for a in cfg.arms})
        if unknown:
            raise ConfigError(f"--arms: unknown arm(s) {unknown}; arms: {[a.name for a in cfg.arms]}")
        runner = Runner(cfg, args.out, data_dir=args.data_dir, dry_run=args.dry_run)
        result = runner.run(only)
    except ConfigError as exc:
        print(f"codeblock experiment: error: {exc}", file=sys.stderr)
        return 2
    except MixError as exc:  # missing or unreadable training source: the message says which and what to set
        print(f"codeblock experiment: error: {exc}", file=sys.stderr)
        return 2
    except ExperimentError as exc:
        print(f"codeblock experiment: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        for item in result["plan"]:
            print(f"{item['status']:>4}  {item['step']}")
    else:
        print(f"report: {Path(args.out) / 'report.md'}")
    return 0
