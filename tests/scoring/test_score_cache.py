"""The SQLite score cache under concurrent writers (``prepare --num_workers N`` shares one cache file)."""

import multiprocessing as mp

import numpy as np

from codeblock.scoring.score_cache import ScoreCache, ids_key


def _writer(folder: str, worker: int, n: int) -> None:
    cache = ScoreCache(folder, "model|float32|cpu|v1|row")  # every worker opens the fresh file at the same time
    for start in range(0, n, 5):
        rows = [[worker, k] for k in range(start, min(n, start + 5))]
        cache.put_many([(ids_key(r), np.array([np.nan, -float(r[1])], dtype=np.float32)) for r in rows])
    cache.close()


def test_concurrent_workers_write_one_cache(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 60)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    cache = ScoreCache(tmp_path, "model|float32|cpu|v1|row")
    assert len(cache) == 240
    got = cache.get_many([ids_key([3, 59])])[ids_key([3, 59])]
    assert got[1] == -59.0 and np.isnan(got[0])
