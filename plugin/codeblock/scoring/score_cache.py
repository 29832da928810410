"""The resumable score cache: an SQLite file per scoring-model identity, and committable score packs.

One row per (model identity, sha256 of the token ids) holding the float32 log-probs. Writers commit whole batches in
one transaction, so an interrupted run loses at most the batch in flight and a rerun recomputes only what is missing.
Several processes (``codeblock prepare --num_workers N`` or ``accelerate launch``) may read and write one cache at once:
the file is in WAL mode, writers wait for each other (busy timeout) and a lock error at start-up is retried.

    >>> import tempfile
    >>> cache = ScoreCache(tempfile.mkdtemp(), "model|float32|cpu|v1")
    >>> cache.put_many([(ids_key([1, 2]), np.array([np.nan, -1.5], dtype=np.float32))])
    >>> cache.get_many([ids_key([1, 2])])[ids_key([1, 2])].tolist()
    [nan, -1.5]

Score packs (:func:`export_score_packs` / :func:`import_score_packs`) are gzip exports meant to be committed beside
an experiment's results.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

SCORES_VERSION = 1  # bump when the computation changes; part of every cache key
BUSY_TIMEOUT_S = 600  # a writer waits this long for another one before giving up


def _retry_locked(fn: Callable[[], None], attempts: int = 50) -> None:
    for k in range(attempts):
        try:
            fn()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or k == attempts - 1:
                raise
            time.sleep(0.05 * (k + 1))


def ids_key(ids: Sequence[int]) -> str:
    return hashlib.sha256(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()


class ScoreCache:
    """SQLite store: one row per (model identity, ids hash) -> float32 bytes. Commits are atomic per batch."""

    def __init__(self, folder: str | os.PathLike, identity: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.identity = identity
        tag = hashlib.sha256(identity.encode()).hexdigest()[:16]
        self.path = self.folder / f"logp-{tag}.sqlite"
        self._db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S)
        _retry_locked(lambda: self._init_schema(identity))

    def _init_schema(self, identity: str) -> None:
        # Several workers may open a fresh cache at the same instant: switching to WAL needs an exclusive lock and
        # SQLite answers "database is locked" at once (no busy wait) when another connection holds it; retried.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed batch survives a killed process
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS logp (key TEXT PRIMARY KEY, n INTEGER, data BLOB)")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('identity', ?)", (identity,))

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        keys = list(dict.fromkeys(keys))
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            q = f"SELECT key, n, data FROM logp WHERE key IN ({','.join('?' * len(part))})"
            for key, n, data in self._db.execute(q, part):
                arr = np.frombuffer(data, dtype=np.float32).copy()
                if arr.size == n:
                    out[key] = arr
        return out

    def put_many(self, items: Sequence[tuple[str, np.ndarray]]) -> None:
        records = [(k, int(a.size), np.asarray(a, dtype=np.float32).tobytes()) for k, a in items]

        def write():
            with self._db:  # one transaction: a batch is stored entirely or not at all
                self._db.executemany("INSERT OR REPLACE INTO logp VALUES (?, ?, ?)", records)

        # Concurrent workers write the same file: SQLite serialises writers (busy timeout); a value written twice
        # is the same bytes (scores are a function of the row alone), so INSERT OR REPLACE is safe.
        _retry_locked(write)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM logp").fetchone()[0])

    def close(self) -> None:
        self._db.close()

# ------------------------------------------------------------------ score packs (committable cache exports)
PACK_SUFFIX = ".logp.gz"


def _pack_keys(path: Path) -> list[str]:
    import gzip
    import json

    with gzip.open(path, "rb") as fh:  # the header is the first line: no need to inflate the values
        return json.loads(fh.readline())["keys"]


def export_score_packs(cache_dir: str | os.PathLike, pack_dir: str | os.PathLike) -> list[Path]:
    """Append the entries of every SQLite score cache in ``cache_dir`` that no pack in ``pack_dir`` holds yet, as a
    new pack ``pack_dir/<identity tag>-<k>.logp.gz``; returns the packs written.

    Packs are small files meant to be committed beside an experiment's results (gzip with mtime 0, rows sorted by
    key, float32 kept exactly), so that a fresh clone reuses hours of scoring instead of redoing it. Existing packs
    are never rewritten: exporting a growing cache every few minutes adds one small file each time instead of a new
    copy of everything to the repository's history.
    """
    import gzip
    import json

    written = []
    for db_path in sorted(Path(cache_dir).glob("logp-*.sqlite")):
        tag = db_path.name.removeprefix("logp-").removesuffix(".sqlite")
        existing = sorted(Path(pack_dir).glob(f"{tag}-*{PACK_SUFFIX}"))
        have = {key for path in existing for key in _pack_keys(path)}
        db = sqlite3.connect(str(db_path))
        try:
            identity = db.execute("SELECT v FROM meta WHERE k = 'identity'").fetchone()[0]
            rows = [r for r in db.execute("SELECT key, n, data FROM logp ORDER BY key") if r[0] not in have]
        finally:
            db.close()
        if not rows:
            continue
        header = json.dumps({"identity": identity, "keys": [r[0] for r in rows], "lengths": [int(r[1]) for r in rows],
                             "dtype": "float32", "version": SCORES_VERSION}, sort_keys=True).encode()
        path = Path(pack_dir) / f"{tag}-{len(existing):03d}{PACK_SUFFIX}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(header + b"\n" + b"".join(bytes(r[2]) for r in rows), compresslevel=9, mtime=0))
        written.append(path)
    return written


def import_score_packs(pack_dir: str | os.PathLike, cache_dir: str | os.PathLike) -> int:
    """Load every ``*.logp.gz`` pack of ``pack_dir`` into the SQLite caches of ``cache_dir``; returns rows loaded.

    Entries keep their model identity, so a pack only serves the model (fingerprint, dtype, device kind) that made it.
    """
    import gzip
    import json

    n = 0
    for path in sorted(Path(pack_dir).glob("*" + PACK_SUFFIX)):
        raw = gzip.decompress(path.read_bytes())
        cut = raw.index(b"\n")
        header = json.loads(raw[:cut])
        if header.get("version") != SCORES_VERSION:
            continue  # scores of an older computation: recomputed instead of reused
        data = np.frombuffer(raw[cut + 1 :], dtype=np.float32)
        items, pos = [], 0
        for key, length in zip(header["keys"], header["lengths"]):
            items.append((key, data[pos : pos + length]))
            pos += length
        if pos != data.size:
            raise ValueError(f"score pack {path} is damaged ({data.size} values, header says {pos}); delete it")
        cache = ScoreCache(cache_dir, header["identity"])
        try:
            cache.put_many(items)
        finally:
            cache.close()
        n += len(items)
    return n
