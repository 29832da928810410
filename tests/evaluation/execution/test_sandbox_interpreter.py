"""`python` and `python3` inside a run are the harness's own interpreter (issue 13 item 6).

BigCodeBench references call ``subprocess.call(["python", script])``, as the official image has its Python on PATH;
the sandbox's fixed PATH may hold no ``python`` at all (or a system one without the task libraries).
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from codeblock_eval.execution.sandbox_host import INTERPRETER_NAMES, interpreter_bin_dir

# Runs `python`/`python3` as commands and reports what each child saw; `numpy` stands for "the task libraries".
PROBE = '''
import json, subprocess
child = "import json, sys, numpy; print(json.dumps([sys.prefix, sys.version]))"
seen = {name: json.loads(subprocess.run([name, "-c", child], capture_output=True, text=True, check=True).stdout)
        for name in ("python", "python3")}
'''


@pytest.mark.parametrize("name", INTERPRETER_NAMES)
def test_bin_dir_runs_this_interpreter_with_its_site_packages(name):
    import subprocess

    out = subprocess.run([os.path.join(interpreter_bin_dir(), name), "-c",
                          "import json, sys, numpy; print(json.dumps([sys.prefix, sys.version]))"],
                         capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    assert json.loads(out.stdout) == [sys.prefix, sys.version]


def test_python_as_a_command_inside_a_run_is_the_harness_interpreter(sandbox):
    job = {"mode": "script", "program": PROBE, "time_limit": 60,
           "test": f"assert seen == {{n: [{sys.prefix!r}, {sys.version!r}] for n in ('python', 'python3')}}, seen"}
    res = sandbox.run_python(job, wall_s=90)
    assert res.verified, (res.reason, res.stderr[-2000:])
    assert res.payload_json()["status"] == "pass", res.payload_json()


def test_the_bin_folder_is_private_to_the_harness_and_read_only_to_runs(sandbox):
    st = os.stat(sandbox.bin_dir)
    assert st.st_uid == os.getuid() and st.st_mode & 0o777 == 0o755
    assert os.path.basename(sandbox.bin_dir).startswith(f"cb-bin-{os.getpid()}-")
    assert interpreter_bin_dir() == sandbox.bin_dir  # one per harness process, not one per run
