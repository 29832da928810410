"""tests/evaluation's private harness cache must not leak into folders collected after it.

Runs a small pytest session (subprocess) with the real tests/evaluation/conftest.py: a module-scoped fixture and a test
inside the folder see the private ``CODEBLOCK_CACHE_DIR``; a test collected later sees the caller's value.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parent / "evaluation" / "conftest.py"

INSIDE = '''
import os, pytest

@pytest.fixture(scope="module")
def seen_at_setup():
    return os.environ.get("CODEBLOCK_CACHE_DIR")

def test_inside(seen_at_setup, eval_cache):
    assert seen_at_setup == os.environ["CODEBLOCK_CACHE_DIR"] == str(eval_cache)
    assert "codeblock-eval-cache" in seen_at_setup
'''

LATER = '''
import os

def test_later():
    assert os.environ.get("CODEBLOCK_CACHE_DIR") == "/users/own/cache"
'''


def test_eval_cache_stays_inside_tests_evaluation(tmp_path):
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "later").mkdir()
    shutil.copy(CONFTEST, tmp_path / "evaluation" / "conftest.py")
    (tmp_path / "evaluation" / "test_inside.py").write_text(INSIDE)
    (tmp_path / "later" / "test_later.py").write_text(LATER)
    env = {**os.environ, "CODEBLOCK_CACHE_DIR": "/users/own/cache"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           "evaluation", "later"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout
