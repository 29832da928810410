"""Data-parallel scoring for ``codeblock prepare``: one process per GPU (``accelerate launch``) or N CPU workers.

Rank 0 runs the whole pipeline; the other ranks only score. Every scoring call of the pipeline (the IFD passes of
pair selection, the token scores of the kept pairs, the reference model's pass) is split: rank 0 takes the rows the
score cache does not hold yet, and in rounds hands each rank a deterministic shard (row ``j`` of a round goes to rank
``j % world``); each rank scores its shard, commits it to the shared score cache and sends it back. Global steps (pair
selection, the budget, item and NL selection, labels) then run once, on rank 0, over the merged scores.

Why the result equals a single-process run byte for byte: a row's scores depend on the row alone (the scorer runs each
row unpadded, :mod:`codeblock.scoring.scorer`), so it does not matter which rank scored a row, with which neighbours, or
whether it came from the cache. A killed run resumes from the cache: whatever any rank committed is a cache hit.

    $ codeblock prepare --data d.jsonl.gz --model smollm2-135m-instruct --out runs/p --num_workers 2   # CPU workers
    $ accelerate launch --num_processes 8 -m codeblock.cli prepare --data d.jsonl.gz --model ... --out runs/p

Processes talk through ``torch.distributed`` (gloo: CPU objects, also between GPU processes), set up from the
``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` variables that ``accelerate launch`` (or ``--num_workers``) sets.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np

from codeblock.scoring.score_cache import ids_key

LOG = logging.getLogger("codeblock.prepare")
ROUND_ROWS = 32  # rows per rank per round: small enough for steady progress, large enough to keep ranks busy
WORKER_FLAG = "CODEBLOCK_PREPARE_WORKER"  # set on the processes --num_workers starts


@dataclass
class WorkerGroup:
    """This process's place among the prepare workers."""

    rank: int
    world: int
    local_rank: int
    local_world: int
    children: list = field(default_factory=list)  # worker processes this rank started (--num_workers)
    init_method: str = "env://"  # --num_workers: tcp://127.0.0.1:<port>, so this process's environment stays as it was
    stats: dict = field(default_factory=dict)  # filled by finish(): rows forwarded / cached on every rank

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str | None) -> str | None:
        """One GPU per local rank when GPUs are there and no device was asked for."""
        if requested is not None:
            return requested
        import torch

        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"


def launched_group() -> WorkerGroup | None:
    """The group described by the launcher's environment (``accelerate launch``, torchrun, --num_workers)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    rank = int(os.environ.get("RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    return WorkerGroup(rank, world, int(os.environ.get("LOCAL_RANK", rank)), local_world)


def start_workers(n: int, argv: list[str], log_dir: Path) -> WorkerGroup:
    """Start ranks 1..n-1 as ``python -m codeblock.cli prepare <argv>`` on this machine; this process is rank 0."""
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = {"WORLD_SIZE": str(n), "LOCAL_WORLD_SIZE": str(n), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    log_dir.mkdir(parents=True, exist_ok=True)
    children = []
    for rank in range(1, n):
        env = {**os.environ, **common, "RANK": str(rank), "LOCAL_RANK": str(rank), WORKER_FLAG: "1",
               "TQDM_DISABLE": "1"}
        with open(log_dir / f"worker-{rank}.log", "w", encoding="utf-8") as log:
            children.append(subprocess.Popen([sys.executable, "-m", "codeblock.cli", "prepare", *argv], env=env,
                                             stdout=log, stderr=subprocess.STDOUT))
    return WorkerGroup(0, n, 0, n, children=children, init_method=f"tcp://127.0.0.1:{port}")


def connect(group: WorkerGroup) -> None:
    """Join the process group and share the CPU cores between the local ranks."""
    import torch
    import torch.distributed as dist

    # Scores do not depend on the thread count (one row, one forward; checked by the tests), so this is speed only.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, group.local_world)))
    if not dist.is_initialized():
        # Rank 0 renders, analyses and selects between scoring calls while the others wait: a long timeout.
        dist.init_process_group("gloo", init_method=group.init_method, rank=group.rank, world_size=group.world,
                                timeout=timedelta(hours=48))


class ShardedScorer:
    """Rank 0's view of a scorer split over the group: ``token_logprobs`` like :class:`~codeblock.scoring.scorer.Scorer`."""

    def __init__(self, scorer, group: WorkerGroup, name: str, progress: bool = True):
        self.scorer, self.group, self.name, self.progress = scorer, group, name, progress

    @property
    def n_forward_rows(self) -> int:
        return self.scorer.n_forward_rows

    @property
    def n_cached_rows(self) -> int:
        return self.scorer.n_cached_rows

    def token_logprobs(self, ids_list):
        from tqdm.auto import tqdm

        rows = [list(map(int, ids)) for ids in ids_list]
        keys = [ids_key(r) for r in rows]
        results = {k: np.full(len(r), np.nan, dtype=np.float32) for k, r in zip(keys, rows) if len(r) <= 1}
        unique: dict[str, list[int]] = {}
        for k, r in zip(keys, rows):
            if len(r) > 1:
                unique.setdefault(k, r)
        hits = self.scorer.cached_scores(list(unique))
        self.scorer.n_cached_rows += len(hits)
        results.update(hits)
        todo = [k for k in unique if k not in hits]
        step = ROUND_ROWS * self.group.world
        bar = tqdm(total=len(todo), desc=f"scoring rows ({self.group.world} workers)", unit="row",
                   disable=None if self.progress and todo else True)
        for start in range(0, len(todo), step):
            part = todo[start : start + step]
            for k, arr in zip(part, run_round(self.group, self.name, [unique[k] for k in part], self.scorer)):
                results[k] = arr
            bar.update(len(part))
        bar.close()
        return [results[k].copy() for k in keys]


def run_round(group: WorkerGroup, name: str, rows: list[list[int]], scorer) -> list[np.ndarray]:
    """Score ``rows`` over the group (rank 0 calls this; the others are in :func:`serve`); results in input order."""
    import torch.distributed as dist

    dist.broadcast_object_list([{"scorer": name, "rows": rows}], src=0)
    mine = scorer.token_logprobs(rows[group.rank :: group.world])
    gathered: list = [None] * group.world
    dist.gather_object(mine, gathered, dst=0)
    out: list = [None] * len(rows)
    for rank, part in enumerate(gathered):
        for j, arr in enumerate(part):
            out[rank + j * group.world] = np.asarray(arr, dtype=np.float32)
    return out


def serve(group: WorkerGroup, scorers: dict) -> int:
    """Ranks > 0: score the shards rank 0 hands out until it says stop; then report what was done."""
    import torch.distributed as dist

    while True:
        box: list = [None]
        dist.broadcast_object_list(box, src=0)
        job = box[0]
        if job is None:
            break
        scorer = scorers[job["scorer"]]
        dist.gather_object(scorer.token_logprobs(job["rows"][group.rank :: group.world]), None, dst=0)
    dist.gather_object(_counts(scorers), None, dst=0)
    dist.destroy_process_group()
    return 0


def finish(group: WorkerGroup, scorers: dict) -> dict:
    """Rank 0: release the workers, collect their counts, wait for the processes it started."""
    import torch.distributed as dist

    dist.broadcast_object_list([None], src=0)
    gathered: list = [None] * group.world
    dist.gather_object(_counts(scorers), gathered, dst=0)
    dist.destroy_process_group()
    failed = []
    for rank, proc in enumerate(group.children, start=1):
        if proc.wait(timeout=600) != 0:
            failed.append(rank)
    if failed:
        raise RuntimeError(f"prepare worker(s) {failed} exited with an error; see workers/worker-<rank>.log")
    group.stats = {
        "workers": group.world,
        "forward_rows_by_rank": [g["forward_rows"] for g in gathered],
        "cached_rows_by_rank": [g["cached_rows"] for g in gathered],
    }
    return group.stats


def abort(group: WorkerGroup) -> None:
    """Rank 0 failed: stop the worker processes it started (they would wait for the next round forever)."""
    for proc in group.children:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)


def _counts(scorers: dict) -> dict:
    return {"forward_rows": sum(getattr(s, "n_forward_rows", 0) or 0 for s in scorers.values() if s is not None),
            "cached_rows": sum(getattr(s, "n_cached_rows", 0) or 0 for s in scorers.values() if s is not None)}
