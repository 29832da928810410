"""Benchmark overlap index: read the six benchmarks from the offline mirror, index them once, cache on disk.

The index holds, for each benchmark *field* (prompt, canonical solution, tests):

* code 10-grams and text 13-grams (see :mod:`codeblock.hygiene.normalize`) as a sorted uint64 key array with
  CSR postings (key -> field entries) and the number of distinct *problem groups* per key. A group is one
  underlying problem (HumanEval/3 in HumanEval, HumanEval+ and every MultiPL-E language), so an n-gram shared by
  many problems (``import unittest``, ``def check(candidate):``) is recognisably boilerplate;
* whole-sequence hashes of short prose fields (8..n-1 words; an MBPP sentence is shorter than 13 words);
* canonical Python function fingerprints (prompt + canonical solution).

The cache key is the sha256 of every benchmark file used plus the index parameters, so a changed file or
parameter rebuilds it.

    >>> idx = load_index(["humaneval"], data_dir)            # doctest: +SKIP
    >>> idx.entries[0]["task_id"], idx.entries[0]["field"]   # doctest: +SKIP
    ('HumanEval/0', 'prompt')
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from codeblock.hygiene.manifest import sha256_file
from codeblock.hygiene.normalize import (batched_ngrams, code_tokens, function_fingerprints, ngram_hashes,
                                         text_tokens)

INDEX_VERSION = 4
BENCHMARKS = ("humaneval", "humanevalplus", "mbpp", "mbppplus", "bigcodebench", "multipl-e")
ALIASES = {"humaneval+": "humanevalplus", "he": "humaneval", "he+": "humanevalplus", "mbpp+": "mbppplus",
           "bcb": "bigcodebench", "multiple": "multipl-e", "multipl_e": "multipl-e", "multiple-e": "multipl-e"}
FILES = {
    "humaneval": ["humaneval/HumanEval.jsonl.gz"],
    "humanevalplus": ["humanevalplus/HumanEvalPlus-v0.1.10.jsonl.gz"],
    "mbpp": ["mbpp/mbpp.jsonl.gz", "mbpp/sanitized-mbpp.jsonl.gz"],
    "mbppplus": ["mbppplus/MbppPlus-v0.2.0.jsonl.gz"],
    "bigcodebench": ["bigcodebench/BigCodeBench-v0.1.0.jsonl.gz"],
    "multipl-e": ["multipl-e/*-reworded.jsonl.gz"],
}
KINDS = ("code", "text")
_ME_NAME = re.compile(r"^(HumanEval|mbpp)_(\d+)_")


@dataclass(frozen=True)
class IndexParams:
    n_code: int = 10
    n_text: int = 13
    short_min: int = 8  # prose fields with short_min..n_text-1 words are matched whole
    min_fn_nodes: int = 40  # smaller functions (``return a + b``) are too common to mean contamination

    def key(self) -> dict:
        return {"n_code": self.n_code, "n_text": self.n_text, "short_min": self.short_min,
                "min_fn_nodes": self.min_fn_nodes}


@dataclass
class PostingIndex:
    keys: np.ndarray  # sorted unique uint64
    offsets: np.ndarray  # int64, len(keys)+1
    postings: np.ndarray  # int32 entry ids
    df: np.ndarray  # int32 distinct problem groups per key

    def entry_sizes(self, n_entries: int, max_df: int) -> np.ndarray:
        keep = np.repeat(self.df <= max_df, np.diff(self.offsets))
        return np.bincount(self.postings[keep], minlength=n_entries)


@dataclass
class BenchIndex:
    params: IndexParams
    benchmarks: list[str]
    files: dict[str, str]  # relative path -> sha256
    entries: list[dict]  # {"benchmark", "task_id", "group", "field"}
    grams: dict[str, PostingIndex]
    short: dict[int, dict]  # whole-sequence hash (as int) -> list[entry id]
    functions: dict[str, list[dict]]  # fingerprint -> [{"benchmark", "task_id", "name", "nodes"}]
    cache_path: str | None = None
    built: bool = False
    extra: dict = field(default_factory=dict)


def resolve_benchmarks(spec: str | list[str] | None) -> list[str]:
    names = spec.split(",") if isinstance(spec, str) else list(spec or ["all"])
    out: list[str] = []
    for raw in names:
        name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if name == "all":
            out.extend(BENCHMARKS)
        elif name in BENCHMARKS:
            out.append(name)
        elif name:
            raise ValueError(f"unknown benchmark {raw!r}; choose from {', '.join(BENCHMARKS)} or all")
    return sorted(set(out), key=BENCHMARKS.index)


def default_data_dir() -> Path | None:
    env = os.environ.get("CODEBLOCK_DATA_DIR")
    if env:
        return Path(env)
    guess = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    return guess if guess.is_dir() else None


def benchmark_files(benchmarks: list[str], data_dir: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for name in benchmarks:
        paths: list[Path] = []
        for pattern in FILES[name]:
            found = sorted(data_dir.glob(pattern))
            if not found:
                raise FileNotFoundError(f"benchmark {name}: {data_dir / pattern} not found (set --data_dir)")
            paths.extend(found)
        out[name] = paths
    return out


def _read(path: Path) -> Iterator[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def iter_fields(name: str, path: Path) -> Iterator[tuple[str, str, str, str, str | None]]:
    """(task_id, group, field, text, python_source_for_fingerprints_or_None) for one benchmark file."""
    for r in _read(path):
        if name in ("humaneval", "humanevalplus"):
            tid = r["task_id"]
            grp = tid
            yield tid, grp, "prompt", r["prompt"], None
            yield tid, grp, "canonical_solution", r["canonical_solution"], r["prompt"] + r["canonical_solution"]
            yield tid, grp, "test", r.get("test") or "", None
        elif name == "mbpp":
            tid = str(r["task_id"])
            grp = f"MBPP/{tid}"
            yield tid, grp, "prompt", r.get("text") or r.get("prompt") or "", None
            yield tid, grp, "canonical_solution", r["code"], r["code"]
            tests = list(r.get("test_list") or []) + list(r.get("challenge_test_list") or [])
            yield tid, grp, "test", "\n".join(tests), None
        elif name == "mbppplus":
            tid = r["task_id"]
            grp = f"MBPP/{tid.split('/')[-1]}"
            yield tid, grp, "prompt", r["prompt"], None
            yield tid, grp, "canonical_solution", r["canonical_solution"], r["canonical_solution"]
            yield tid, grp, "test", r.get("assertion") or "", None
        elif name == "bigcodebench":
            tid = r["task_id"]
            grp = tid
            yield tid, grp, "complete_prompt", r["complete_prompt"], None
            yield tid, grp, "instruct_prompt", r["instruct_prompt"], None
            yield tid, grp, "canonical_solution", r["canonical_solution"], r["complete_prompt"] + r["canonical_solution"]
            yield tid, grp, "test", r["test"], None
        elif name == "multipl-e":
            m = _ME_NAME.match(r["name"])
            grp = f"{'HumanEval' if m and m[1] == 'HumanEval' else 'MBPP'}/{m[2]}" if m else r["name"]
            tid = f"{r['language']}/{r['name']}"
            yield tid, grp, "prompt", r["prompt"], None
            yield tid, grp, "test", r["tests"], None


def _posting_index(all_h: np.ndarray, all_e: np.ndarray, groups_of_entry: np.ndarray) -> PostingIndex:
    """CSR postings from parallel (n-gram hash, entry id) arrays; entry ids arrive in increasing order."""
    order = np.argsort(all_h, kind="stable")  # stable: entries stay increasing within one key
    all_h, all_e = all_h[order], all_e[order].astype(np.int32)
    if len(all_h):
        first = np.ones(len(all_h), dtype=bool)
        first[1:] = (all_h[1:] != all_h[:-1]) | (all_e[1:] != all_e[:-1])
        all_h, all_e = all_h[first], all_e[first]
    new_key = np.ones(len(all_h), dtype=bool)
    new_key[1:] = all_h[1:] != all_h[:-1]
    starts = np.flatnonzero(new_key)
    keys = all_h[starts]
    offsets = np.append(starts, len(all_h)).astype(np.int64)
    # distinct problem groups per key: unique (key, group) codes, counted per key
    key_of = np.cumsum(new_key) - 1
    n_groups = int(groups_of_entry.max()) + 1 if len(groups_of_entry) else 1
    codes = np.sort(key_of.astype(np.int64) * n_groups + groups_of_entry[all_e])  # sort: np.unique hashes, slowly
    if len(codes):
        codes = codes[np.append(True, codes[1:] != codes[:-1])]
    df = np.bincount(codes // n_groups, minlength=len(keys)).astype(np.int32)
    return PostingIndex(keys=keys, offsets=offsets, postings=all_e, df=df)


def build_index(benchmarks: list[str], data_dir: Path, params: IndexParams = IndexParams(),
                progress: bool = True) -> BenchIndex:
    from tqdm.auto import tqdm

    files = benchmark_files(benchmarks, data_dir)
    entries: list[dict] = []
    tokens: dict[str, list[list[str]]] = {k: [] for k in KINDS}
    short: dict[int, list[int]] = {}
    functions: dict[str, list[dict]] = {}
    group_ids: dict[str, int] = {}
    entry_groups: list[int] = []
    todo = [(name, p) for name, paths in files.items() for p in paths]
    for name, path in tqdm(todo, desc="index benchmarks", unit="file", disable=None if progress else True):
        for tid, grp, fld, text, source in iter_fields(name, path):
            eid = len(entries)
            entries.append({"benchmark": name, "task_id": tid, "group": grp, "field": fld})
            entry_groups.append(group_ids.setdefault(grp, len(group_ids)))
            tokens["code"].append(code_tokens(text))
            words = text_tokens(text)
            tokens["text"].append(words)
            if fld.endswith("prompt") and params.short_min <= len(words) < params.n_text:
                h = int(ngram_hashes(words, len(words))[0])
                short.setdefault(h, []).append(eid)
            if source:
                for fp, fn_name, nodes in function_fingerprints(source, params.min_fn_nodes):
                    recs = functions.setdefault(fp, [])
                    rec = {"benchmark": name, "task_id": tid, "name": fn_name, "nodes": nodes}
                    if rec not in recs:
                        recs.append(rec)
    sizes = {"code": params.n_code, "text": params.n_text}
    groups = np.array(entry_groups, dtype=np.int64)
    rel = {p.relative_to(data_dir).as_posix(): sha256_file(p) for ps in files.values() for p in ps}
    return BenchIndex(params=params, benchmarks=benchmarks, files=rel, entries=entries,
                      grams={k: _posting_index(*batched_ngrams(tokens[k], sizes[k]), groups) for k in KINDS},
                      short={k: v for k, v in short.items()}, functions=functions, built=True)


def _cache_key(benchmarks: list[str], data_dir: Path, params: IndexParams) -> str:
    files = benchmark_files(benchmarks, data_dir)
    ident = {"version": INDEX_VERSION, "params": params.key(), "benchmarks": benchmarks,
             "files": {p.relative_to(data_dir).as_posix(): sha256_file(p) for ps in files.values() for p in ps}}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codeblock" / "decontam"


def save_index(idx: BenchIndex, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for kind, pi in idx.grams.items():
        for attr in ("keys", "offsets", "postings", "df"):
            arrays[f"{kind}_{attr}"] = getattr(pi, attr)
    meta = {"params": idx.params.key(), "benchmarks": idx.benchmarks, "files": idx.files, "entries": idx.entries,
            "short": {str(k): v for k, v in idx.short.items()}, "functions": idx.functions}
    # Write to temp names then rename: concurrent runs never see a half-written cache.
    tmp_npz = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp_npz, **arrays)
    tmp_json = path.with_name(path.name + f".{os.getpid()}.tmp.json")
    tmp_json.write_text(json.dumps(meta), encoding="utf-8")
    os.replace(tmp_json, path.with_suffix(".json"))
    os.replace(tmp_npz, path.with_suffix(".npz"))


def _load_cached(path: Path) -> BenchIndex | None:
    npz, meta_path = path.with_suffix(".npz"), path.with_suffix(".json")
    if not (npz.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(npz) as z:
            grams = {k: PostingIndex(*(z[f"{k}_{a}"] for a in ("keys", "offsets", "postings", "df"))) for k in KINDS}
    except (OSError, ValueError, KeyError):
        return None  # corrupt cache: rebuild
    return BenchIndex(params=IndexParams(**meta["params"]), benchmarks=meta["benchmarks"], files=meta["files"],
                      entries=meta["entries"], grams=grams, short={int(k): v for k, v in meta["short"].items()},
                      functions=meta["functions"], cache_path=str(path))


def load_index(benchmarks: list[str] | str, data_dir: str | Path, params: IndexParams = IndexParams(),
               cache_dir: str | Path | None = None, use_cache: bool = True, progress: bool = True) -> BenchIndex:
    """Index ``benchmarks`` from ``data_dir``, reusing the on-disk cache when the dataset hashes match."""
    benchmarks = resolve_benchmarks(benchmarks)
    data_dir = Path(data_dir)
    path = Path(cache_dir or default_cache_dir()) / f"bench-{_cache_key(benchmarks, data_dir, params)}"
    if use_cache:
        cached = _load_cached(path)
        if cached is not None:
            return cached
    idx = build_index(benchmarks, data_dir, params, progress=progress)
    if use_cache:
        save_index(idx, path)
        idx.cache_path = str(path)
    return idx
