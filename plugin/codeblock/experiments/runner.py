"""`codeblock experiment CONFIG.yaml --output DIR`: prepare -> train -> eval for every arm and seed, then one report.

Each step runs as its own subprocess (``codeblock prepare``, ``codeblock train``, ``codeblock-eval``) with the
experiment folder as working directory, so a crash in one arm names its log, the step's peak memory is its own, and
no absolute path enters an output. A finished step leaves ``.step.json`` with a fingerprint of everything it depends
on (its config, content hashes of the data, the upstream steps' fingerprints) and nothing of the machine.

The folder is meant to be committed (``results/<experiment>/``): small outputs (fingerprints, stats, selections, pair
scores, score packs, metrics, samples, verdicts, report) are tracked, heavy ones (adapters, merged models, prepared
token rows, caches; see ``.gitignore``) are not. On a fresh clone a step counts as done from its committed marker;
a heavy output it lacks is rebuilt only when a step that still has to run needs it (e.g. an adapter is retrained
only if its evaluation is unfinished; a partial evaluation is resumed from its committed ``samples.jsonl`` and is
restarted only if the retrained adapter differs from the one that produced those samples).

Layout under DIR::

    experiment.yaml              resolved config          data/mix.json (+ train.jsonl)   training mix + manifest
    pairs/prepared/              the shared pair-selection step: pair_scores.jsonl (IFD per row, kept), stats.json
    scores/*.logp.gz             score packs: every model pass made so far, read by every later prepare
    reference/s42/               Token-Cleaning reference (adapter/, merged/)
    arms/<arm>-s42/prepared/     `codeblock prepare` output (stats.json: supervised fraction, ...)
    arms/<arm>-s42/adapter/      LoRA adapter + train_metrics.json (wall time, peak memory, loss)
    eval/<arm>-s42/              codeblock-eval run (results.json, samples.jsonl, eval_results.jsonl)
    report.md, report.png, report_vs_base.md, summary.json

    $ codeblock experiment recipes/experiments/qwen0.5b_cpu_headline.yaml --output results/qwen0.5b-cpu-headline
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from codeblock.config import ConfigError
from codeblock.experiments.config import ArmSpec, ExperimentConfig, fingerprint

MARKER = ".step.json"
# CodeBlockConfig knobs that decide which pairs are kept: arms that leave them alone must keep the shared step's pairs.
PAIR_KNOBS = ("pair_selector", "pair_keep_ratio", "quality_field", "quality_range", "embedding", "longtail_k",
              "template", "max_seq_length", "system_prompt", "scoring_model", "scoring_batch_size")


class ExperimentError(RuntimeError):
    """A step failed; the message names the step and its log."""


LOG = logging.getLogger(__package__)  # "codeblock.experiments"


def _log(msg: str) -> None:
    LOG.info(msg)


def _marker(folder: Path) -> dict:
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return {}


def _done(folder: Path, fp: str) -> bool:
    return _marker(folder).get("fingerprint") == fp


def _mark(folder: Path, fp: str, step: str, wall: float, **extra) -> None:
    (folder / MARKER).write_text(json.dumps({"step": step, "fingerprint": fp, "wall_s": round(wall, 3),
                                             "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra},
                                            indent=1, sort_keys=True) + "\n")


def _run(cmd: list[str], log: Path, step: str, cwd: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"\n$ (cd {cwd}) {' '.join(cmd)}\n")
        fh.flush()
        rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd, env={**os.environ, "TQDM_DISABLE": "1"})
    if rc != 0:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-15:])
        raise ExperimentError(f"step {step} failed (exit {rc}); log: {log}\n{tail}")


def weights_sha256(folder: Path) -> str | None:
    """Content hash of an adapter's or model's weight files (None when there are none)."""
    files = sorted(p for p in folder.glob("*") if p.suffix in (".safetensors", ".bin"))
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _kept_indices(prepared: Path) -> list[int]:
    """Example indices that passed pair selection (every selection.jsonl record reached selection)."""
    lines = (prepared / "selection.jsonl").read_text(encoding="utf-8").splitlines()
    return sorted(json.loads(line)["index"] for line in lines if line.strip())


class Runner:
    def __init__(self, cfg: ExperimentConfig, out: str | Path, *, data_dir: str | Path | None = None,
                 python: str = sys.executable, dry_run: bool = False):
        self.cfg, self.out, self.python, self.dry_run = cfg, Path(out), python, dry_run
        self.data_dir = Path(data_dir or os.environ.get("CODEBLOCK_DATA_DIR") or "data").resolve()
        self.plan: list[dict] = []
        self.cache_dir, self.pack_dir = self.out / "cache" / "scores", self.out / "scores"
        self._packs_loaded = False

    # -------------------------------------------------------------- step machinery
    def step(self, name: str, folder: Path, fp: str, action, *, keep_partial: bool = False,
             needs: tuple[str, ...] = (), need_outputs: bool = False) -> bool:
        """Run ``action`` unless ``folder`` holds a finished step with fingerprint ``fp``. ``needs``: uncommitted
        outputs (relative to ``folder``) the step must be redone for when ``need_outputs`` and they are absent.
        Returns whether the step ran (or would run, in a dry run)."""
        missing = need_outputs and any(not (folder / n).exists() for n in needs)
        finished = _done(folder, fp)
        if finished and not missing:
            self.plan.append({"step": name, "status": "done"})
            return False
        # "rebuild": the committed step is valid but a later step needs its ignored outputs (adapter, token rows)
        self.plan.append({"step": name, "status": "rebuild" if finished else "run"})
        if self.dry_run:
            return True
        marker = _marker(folder)
        if folder.exists() and not keep_partial:
            shutil.rmtree(folder)  # inputs changed, the step died midway, or its heavy outputs are gone: start clean
        folder.mkdir(parents=True, exist_ok=True)
        _log(f"{name} ...")
        t0 = time.perf_counter()
        extra = action() or {}
        if marker.get("fingerprint") == fp and "weights_sha256" in marker and "weights_sha256" in extra:
            extra["reproduced"] = marker["weights_sha256"] == extra["weights_sha256"]
        _mark(folder, fp, name, time.perf_counter() - t0, **extra)
        _log(f"{name} done in {time.perf_counter() - t0:.0f} s")
        return True

    def codeblock_cli(self, *args: str) -> list[str]:
        return [self.python, "-m", "codeblock.cli", *args]

    def rel(self, path: Path) -> str:
        """``path`` as the subprocesses (cwd = the experiment folder) see it."""
        return os.path.relpath(path, self.out)

    def _load_packs(self) -> None:
        if not self._packs_loaded and not self.dry_run:
            from codeblock.scoring.scorer import import_score_packs

            n = import_score_packs(self.pack_dir, self.cache_dir) if self.pack_dir.is_dir() else 0
            if n:
                _log(f"score packs: {n} cached passes loaded from {self.pack_dir}")
            self._packs_loaded = True

    def _save_packs(self) -> None:
        from codeblock.scoring.score_cache import export_score_packs

        for path in export_score_packs(self.cache_dir, self.pack_dir):
            _log(f"score pack written: {path} ({path.stat().st_size / 1e6:.1f} MB)")

    # -------------------------------------------------------------- steps
    def data(self) -> tuple[Path, str]:
        spec, folder = self.cfg.data, self.out / "data"
        train = folder / "train.jsonl"
        from codeblock.hygiene.manifest import sha256_file

        if spec.path:
            return Path(spec.path).resolve(), sha256_file(Path(spec.path))
        from codeblock.experiments.data import MBPP_PLUS_FILE, SOURCES

        # By content, not location: a clone elsewhere (or another data mirror with the same files) reuses the steps.
        files = sorted({SOURCES[s] for s in spec.sources if s in SOURCES} | {MBPP_PLUS_FILE})
        hashes = {f: sha256_file(self.data_dir / f) if (self.data_dir / f).is_file() else None for f in files}
        fp = fingerprint("data", spec.__dict__, hashes)

        def build():
            from codeblock.experiments.data import build_training_mix

            manifest = build_training_mix(self.data_dir, list(spec.sources), train, decontaminate=spec.decontaminate,
                                          limit_per_source=spec.limit_per_source)
            recorded = json.loads((folder / "mix.json").read_text())["sha256"] if (folder / "mix.json").exists() else None
            if recorded and recorded != manifest["sha256"]:
                raise ExperimentError(f"rebuilt training mix differs from the committed one ({manifest['sha256']} vs "
                                      f"{recorded}): the data or the mix code changed; delete {folder} to start over")
            manifest["output"] = self.rel(train)
            (folder / "mix.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

        # train.jsonl is a copy of the training data and is not committed: rebuilt (seconds) whenever it is missing.
        self.step("data", folder, fp, build, keep_partial=True, needs=("train.jsonl",), need_outputs=not self.dry_run)
        digest = json.loads((folder / "mix.json").read_text())["sha256"] if (folder / "mix.json").exists() else "pending"
        return train, digest

    def pairs(self, train: Path, data_fp: str, seed: int) -> Path:
        """The shared pair-selection step: IFD of every pool row (two passes each), once for all arms."""
        folder = self.out / "pairs" / f"s{seed}"
        config = self.cfg.codeblock_config(ArmSpec(name="pairs", supervision="full"), seed=seed)
        fp = fingerprint("pairs", data_fp, self.cfg.base_model, config.fingerprint_dict())

        def build():
            self._prepare(folder, config, train, f"pairs-s{seed}")
            return {"n_kept": len(_kept_indices(folder / "prepared"))}

        self.step(f"pairs s{seed}", folder, fp, build)
        return folder / "prepared"

    def _prepare(self, folder: Path, config, train: Path, label: str) -> None:
        self._load_packs()
        (folder / "codeblock.yaml").write_text(config.to_yaml(), encoding="utf-8")
        try:
            _run(self.codeblock_cli("prepare", "--data", self.rel(train), "--model", self.cfg.base_model, "--output",
                                    self.rel(folder / "prepared"), "--config", self.rel(folder / "codeblock.yaml"),
                                    "--score_cache", self.rel(self.cache_dir), "--no_selection_text", "--quiet"),
                 self.out / "logs" / f"prepare-{label}.log", f"prepare {label}", self.out)
        finally:
            self._save_packs()  # even a failed or cut prepare keeps the passes it finished

    def reference_fp(self, data_fp: str, seed: int) -> str:
        training = {**self.cfg.training_config(None), **self.cfg.reference.training}
        return fingerprint("reference", data_fp, seed, self.cfg.reference.fraction, training, self.cfg.base_model,
                           self._shared_loss_reduction())

    def ensure_reference(self, train: Path, data_fp: str, seed: int) -> None:
        """Token Cleaning's reference model (a LoRA warm-up on a seeded subset, merged); retrained when absent."""
        folder = self.out / "reference" / f"s{seed}"
        ref = self.cfg.reference
        training = {**self.cfg.training_config(None), **ref.training}

        def build():
            rows = train.read_text(encoding="utf-8").splitlines()
            k = max(1, round(ref.fraction * len(rows)))
            keep = sorted(random.Random(seed).sample(range(len(rows)), k))
            (folder / "subset.jsonl").write_text("".join(rows[i] + "\n" for i in keep), encoding="utf-8")
            yaml_path = self._train_yaml(folder, training, seed, data_path=folder / "subset.jsonl",
                                         supervision="full", sparse_loss=False, merged=folder / "merged")
            _run(self.codeblock_cli("train", "--config", self.rel(yaml_path)),
                 self.out / "logs" / f"reference-s{seed}.log", f"reference s{seed}", self.out)
            return {"weights_sha256": weights_sha256(folder / "merged")}

        self.step(f"reference s{seed}", folder, self.reference_fp(data_fp, seed), build,
                  needs=("merged/config.json",), need_outputs=True)

    def _shared_loss_reduction(self) -> str:
        """The experiment-level loss_reduction (CodeBlockConfig's default when the YAML leaves it out)."""
        from codeblock.config import CodeBlockConfig

        return self.cfg.codeblock.get("loss_reduction", CodeBlockConfig().loss_reduction)

    def _train_yaml(self, folder: Path, training: dict, seed: int, *, supervision: str, sparse_loss: bool,
                    data_path: Path | None = None, prepared: Path | None = None, merged: Path | None = None,
                    loss_reduction: str | None = None) -> Path:
        """``folder/train.yaml`` for ``codeblock train`` (paths relative to the experiment folder)."""
        import yaml

        conf = {**training, "model_name_or_path": self.cfg.base_model, "output_dir": self.rel(folder / "adapter"),
                "seed": seed, "supervision": supervision, "sparse_loss": sparse_loss,
                # the one CodeBlockConfig knob the trainer itself applies (the arm's, else the experiment's)
                "codeblock": {"loss_reduction": loss_reduction or self._shared_loss_reduction()}}
        if data_path:
            conf["data_path"] = self.rel(data_path)
        if prepared:
            conf["prepared_path"] = self.rel(prepared)
        if merged:
            conf["merged_output_dir"] = self.rel(merged)
        path = folder / "train.yaml"
        path.write_text(yaml.safe_dump(conf, sort_keys=True), encoding="utf-8")
        return path

    def arm(self, arm: ArmSpec, seed: int, train: Path, data_fp: str, pairs: Path | None, ref_fp: str | None) -> Path:
        label = f"{arm.name}-s{seed}"
        folder = self.out / "arms" / label
        ref_path = self.out / "reference" / f"s{seed}" / "merged"
        uses_ref = ref_fp is not None and arm.supervision == "excess_tokens" and not arm.codeblock.get("reference_model")
        config = self.cfg.codeblock_config(arm, seed=seed, reference_model=self.rel(ref_path) if uses_ref else None)
        knobs = config.fingerprint_dict()
        if uses_ref:  # by what the reference is, not where it lies: moving the folder must not redo every arm
            knobs["reference_model"] = f"reference-step:{ref_fp}"
        prep_fp = fingerprint("prepare", data_fp, self.cfg.base_model, knobs)
        training = self.cfg.training_config(arm)
        train_fp = fingerprint("train", prep_fp, training, seed, arm.sparse_loss)
        eval_folder, eval_fp = self.out / "eval" / label, self.eval_fp(train_fp)
        need = not _done(eval_folder, eval_fp)  # heavy outputs matter only while the evaluation is unfinished
        adapter_ok = _done(folder / "adapter", train_fp) and weights_sha256(folder / "adapter") is not None

        def prepare():
            if uses_ref:
                self.ensure_reference(train, data_fp, seed)
            self._prepare(folder, config, train, label)
            if pairs is not None and not set(arm.codeblock) & set(PAIR_KNOBS):
                mine, shared = _kept_indices(folder / "prepared"), _kept_indices(pairs)
                if mine != shared:
                    raise ExperimentError(f"prepare {label} kept {len(mine)} pairs, the shared step {len(shared)} "
                                          "(scores not reproducible?); see pairs/ and the arm's prepared/stats.json")

        self.step(f"prepare {label}", folder / "prepared", prep_fp, prepare, needs=("train.jsonl",),
                  need_outputs=need and not adapter_ok)

        def fit():
            yaml_path = self._train_yaml(folder, training, seed, supervision=arm.supervision,
                                         sparse_loss=arm.sparse_loss, prepared=folder / "prepared",
                                         loss_reduction=config.loss_reduction)
            _run(self.codeblock_cli("train", "--config", self.rel(yaml_path)), self.out / "logs" / f"train-{label}.log",
                 f"train {label}", self.out)
            return {"weights_sha256": weights_sha256(folder / "adapter")}

        trained = self.step(f"train {label}", folder / "adapter", train_fp, fit, keep_partial=False,
                            needs=("adapter_config.json",), need_outputs=need)
        # A partial evaluation continues with a retrained adapter only if training reproduced the same weights.
        restart = trained and not self.dry_run and _marker(folder / "adapter").get("reproduced") is False
        return self.evaluate(label, folder / "adapter", train_fp, restart=restart)

    def samples_fp(self, upstream_fp: str) -> str:
        """What the generated samples depend on (the formula of the first published steps: they stay valid)."""
        return fingerprint("eval", upstream_fp, self.cfg.base_model, list(self.cfg.benchmarks), self.cfg.eval_config())

    def eval_fp(self, upstream_fp: str) -> str:
        """The samples plus how the harness turns raw outputs into verdicts: a new ``SCORING_REVISION`` rescores
        committed samples without generating them again."""
        from codeblock_eval import SCORING_REVISION

        return fingerprint("scored", self.samples_fp(upstream_fp), SCORING_REVISION)

    def evaluate(self, label: str, adapter: Path | None, upstream_fp: str, *, restart: bool = False) -> Path:
        ev = self.cfg.eval_config()
        folder = self.out / "eval" / label
        fp, samples_fp = self.eval_fp(upstream_fp), self.samples_fp(upstream_fp)
        cmd = [self.python, "-m", "codeblock_eval.cli", "--model", self.cfg.base_model, "--benchmarks",
               ",".join(self.cfg.benchmarks), "--output", self.rel(folder), "--allow_code_execution", "--resume",
               "--batch_size", str(ev["batch_size"]), "--max_new_tokens", str(ev["max_new_tokens"]),
               "--prompt_style", ev["prompt_style"], "--timeout_scale", str(ev["timeout_scale"]),
               "--backend", ev["backend"], "--dynamic_slots", str(ev["dynamic_slots"])]
        if adapter is not None:
            cmd += ["--adapter", self.rel(adapter)]
        if ev["limit"]:
            cmd += ["--limit", str(ev["limit"])]
        if ev["parallel"]:
            cmd += ["--parallel", str(ev["parallel"])]
        if self.data_dir.is_dir():
            cmd += ["--data_dir", str(self.data_dir)]
        # An interrupted evaluation keeps its samples and resumes; one whose inputs changed starts over. A finished one
        # scored by an older harness keeps its samples too: the rerun re-derives their programs and scores them again.
        marker = _marker(folder)
        stale = restart or (bool(marker) and marker.get("samples_fingerprint", marker.get("fingerprint")) != samples_fp)
        if stale and not self.dry_run and folder.exists():
            _log(f"eval {label}: discarding samples made for other inputs")
            shutil.rmtree(folder)

        def run_eval() -> dict:
            _run(cmd, self.out / "logs" / f"eval-{label}.log", f"eval {label}", self.out)
            return {"samples_fingerprint": samples_fp}

        self.step(f"eval {label}", folder, fp, run_eval, keep_partial=True)
        return folder

    # -------------------------------------------------------------- whole run
    def run(self, only: list[str] | None = None) -> dict:
        import yaml

        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "experiment.yaml").write_text(yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
        train, data_fp = self.data()
        arms = [a for a in self.cfg.arms if not only or a.name in only]
        eval_dirs: dict[str, Path] = {}
        summary = None
        for seed in self.cfg.seeds:
            trained = [a for a in arms if a.train]
            pairs = self.pairs(train, data_fp, seed) if trained else None
            # Token Cleaning's reference is trained here unless the arm names its own (codeblock.reference_model).
            ref_fp = self.reference_fp(data_fp, seed) if any(
                a.supervision == "excess_tokens" and not {**self.cfg.codeblock, **a.codeblock}.get("reference_model")
                for a in trained) else None
            for arm in arms:
                if not arm.train:
                    if seed == self.cfg.seeds[0]:  # greedy decoding of the untrained model: one run covers all seeds
                        eval_dirs[arm.name] = self.evaluate(arm.name, None, fingerprint("base", self.cfg.base_model))
                        summary = self.report(eval_dirs)
                    continue
                eval_dirs[f"{arm.name}-s{seed}"] = self.arm(arm, seed, train, data_fp, pairs, ref_fp)
                summary = self.report(eval_dirs)
        if self.dry_run:
            return {"plan": self.plan}
        return summary if eval_dirs else self.report(eval_dirs)  # the last evaluation's report is the final one

    def report(self, eval_dirs: dict[str, Path]) -> dict | None:
        """Rewrite report.md/summary.json over every arm evaluated so far (also those outside --arms), after each
        evaluation: a run spread over several working periods then always commits a report of its finished arms."""
        if self.dry_run:
            return None
        from codeblock.experiments.report import finished_eval_dirs, write_report

        return write_report(self.cfg, self.out, {**finished_eval_dirs(self.cfg, self.out), **eval_dirs})


# ------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML (see recipes/experiments/)")
    parser.add_argument("--out", required=True, help="experiment folder (reruns skip finished steps)")
    parser.add_argument("--data_dir", "--data-dir", dest="data_dir",
                        help="data mirror laid out like shared/data (default: $CODEBLOCK_DATA_DIR)")
    parser.add_argument("--arms", help="comma-separated subset of arm names to run")
    parser.add_argument("--dry-run", action="store_true", help="print which steps would run or be skipped")


def run(args: argparse.Namespace) -> int:
    from codeblock.experiments.data import MixError

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
            print(f"{item['status']:>7}  {item['step']}")
    else:
        print(f"report: {Path(args.out) / 'report.md'}")
    return 0
