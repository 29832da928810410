"""BigCodeBench exclusions by cause: real references run in the real sandbox, then classified and summarised.

BigCodeBench/289 needs tensorflow (in no extra of ours, see README), BigCodeBench/176 resolves host names (the sandbox
has no network; the reference swallows the DNS error, so only its code tells), BigCodeBench/1 is stdlib-only.
"""

from __future__ import annotations

import importlib.util
import json
import re
import runpy
import sys
from pathlib import Path

import pytest

from codeblock_eval.benchmarks.bcb_exclusions import classify_exclusion, exclusion_breakdown, summary_line
from codeblock_eval.benchmarks.bigcodebench import BigCodeBench
from codeblock_eval.benchmarks.registry import get_benchmark
from codeblock_eval.execution.evaluate import evaluate_samples

ROOT = Path(__file__).resolve().parents[3]
EXTRA_HINT = "needs the [bigcodebench] extra: pip install -c constraints.txt -e '.[bigcodebench]'"

# Evidence as the sweep records it (tails of real tracebacks from this sandbox).
NLTK_MISSING = ("fail (3 tests failed): __test__.TestCases.test_case_1: Traceback (most recent call last):\n"
                "  File \"__test__.py\", line 12, in task_func\nLookupError: \n*****\n  Resource \x1b[93mstopwords"
                "\x1b[0m not found.\n  Please use the NLTK Downloader to obtain the resource:\n\n  >>> import nltk\n"
                "  >>> nltk.download('stopwords')\n  Searched in:\n    - '/tmp/cb-sbx/nltk_data'\n*****\n")
PANDAS_API = ("fail (6 tests failed): __test__.TestCases.test_case_1: Traceback (most recent call last):\n"
              "  File \"__test__.py\", line 39, in task_func\n    return object.__getattribute__(self, name)\n"
              "AttributeError: 'DataFrame' object has no attribute 'applymap'\n || __test__.TestCases.test_case_2: ...")
HTTP_DOWN = ("fail (1 tests failed): __test__.TestCases.test_fetch: Traceback (most recent call last):\n"
             "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='example.com', port=443): Max retries "
             "exceeded with url: / (Caused by NameResolutionError(\"Failed to resolve 'example.com' "
             "([Errno -3] Temporary failure in name resolution)\"))\n")


def _needs_isolated_network(sandbox):
    if not sandbox.describe().get("network_isolated"):
        pytest.skip("the sandbox could not isolate the network here, so BigCodeBench/176 may reach DNS")


def _needs_tensorflow_missing():
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("tensorflow is installed: BigCodeBench/289 would not be excluded")


@pytest.mark.parametrize(("verdict", "cause", "detail"), [
    ("fail: ModuleNotFoundError: No module named 'cv2'", "missing_library", "cv2"),
    ("fail: ModuleNotFoundError: No module named 'mpl_toolkits.basemap'", "missing_library", "mpl_toolkits"),
    (NLTK_MISSING, "needs_data_download", "nltk:stopwords"),
    ("fail: LookupError: Resource 'stopwords' not found. Please use the NLTK Downloader", "needs_data_download",
     "nltk:stopwords"),
    ("fail: MissingCorpusError: Looks like you are missing some required data for this feature.",
     "needs_data_download", "MissingCorpusError"),
    (HTTP_DOWN, "needs_network", "requests.exceptions.ConnectionError"),
    ("fail: TesseractNotFoundError: tesseract is not installed or it's not in your PATH", "missing_program",
     "TesseractNotFoundError"),
    ("fail (2 tests failed): t: FileNotFoundError: [Errno 2] No such file or directory: 'python'\n",
     "missing_program", "python (not on the sandbox's PATH)"),
    ("fail: FileNotFoundError: [Errno 2] No such file or directory: 'data.csv'", "reference_fails",
     "FileNotFoundError: [Errno 2] No such file or directory: 'data.csv'"),
    ("timeout: suite ran past its limit after 3 tests", "timeout", "suite ran past its limit after 3 tests"),
    ("flaky: " + PANDAS_API, "flaky", "AttributeError: 'DataFrame' object has no attribute 'applymap'"),
    (PANDAS_API, "reference_fails", "AttributeError: 'DataFrame' object has no attribute 'applymap'"),
    # The root cause wins: a missing module, even when a network error shows up in a later test.
    ("fail: No module named 'bs4' || " + HTTP_DOWN, "missing_library", "bs4"),
])
def test_cause_and_detail_from_recorded_evidence(verdict, cause, detail):
    assert classify_exclusion(verdict) == (cause, detail)


def test_unmocked_network_call_in_the_code_explains_a_plain_assertion_failure():
    verdict = "fail (1 tests failed): t: AssertionError: {'8.8.8.8': None} != {'8.8.8.8': 'dns.google'}"
    code = "import socket\ndef task_func(ips):\n    return {ip: socket.gethostbyaddr(ip)[0] for ip in ips}\n"
    assert classify_exclusion(verdict, code, "class TestCases: ...") == (
        "needs_network", "calls socket.gethostbyaddr (not mocked by its tests)")
    other_mock = "@patch('os.listdir')\nclass TestCases: ..."  # mocking something else does not take the network away
    assert classify_exclusion(verdict, code, other_mock)[0] == "needs_network"
    mocked = "@patch('socket.gethostbyaddr')\nclass TestCases: ..."
    assert classify_exclusion(verdict, code, mocked)[0] == "reference_fails"


def test_a_reference_running_python_as_a_command_is_not_blamed_on_the_path():
    # The sandbox puts the harness's interpreter on every run's PATH (tests/evaluation/execution/
    # test_sandbox_interpreter.py), so such a failure is the reference's own.
    verdict = "fail (1 tests failed): t: AssertionError: 'Script execution failed!' != 'Script executed successfully!'"
    code = "import subprocess\ndef task_func(p):\n    return subprocess.call(['python', p])\n"
    assert classify_exclusion(verdict, code)[0] == "reference_fails"


def test_breakdown_counts_names_libraries_and_orders_tasks():
    excluded = {"BigCodeBench/10": "fail: No module named 'seaborn'", "BigCodeBench/9": "fail: No module named 'seaborn'",
                "BigCodeBench/100": "fail: No module named 'cv2'", "BigCodeBench/2": "timeout: slow"}
    b = exclusion_breakdown(excluded, 1140)
    assert b["by_cause"] == {"missing_library": 3, "timeout": 1}
    assert b["missing_libraries"] == {"seaborn": 2, "cv2": 1}
    assert list(b["tasks"]) == ["BigCodeBench/2", "BigCodeBench/9", "BigCodeBench/10", "BigCodeBench/100"]
    assert summary_line("bigcodebench", b) == ("bigcodebench: 4 of 1140 tasks excluded (0.4%): library not installed "
                                               "3 (seaborn 2, cv2 1); timeout 1")
    assert summary_line("bigcodebench", exclusion_breakdown({}, 5)) == "bigcodebench: 0 of 5 tasks excluded (0.0%)"


def test_real_missing_library_and_network_tasks_are_classified_printed_and_stored(data_dir, sandbox, tmp_path,
                                                                                   capsys):
    _needs_tensorflow_missing()
    _needs_isolated_network(sandbox)
    bench = get_benchmark("bigcodebench")
    problems = [p for p in bench.load_problems(data_dir)
                if p.task_id in ("BigCodeBench/1", "BigCodeBench/176", "BigCodeBench/289")]
    samples = [{"task_id": p.task_id, "solution": bench.reference_program(p)} for p in problems]
    summary = evaluate_samples(bench, problems, samples, out_dir=tmp_path, allow_code_execution=True,
                               sandbox=sandbox, progress=False, parallel=2)
    causes = summary["excluded_by_cause"]
    assert causes["tasks"] == {
        "BigCodeBench/176": {"cause": "needs_network", "detail": "calls socket.gethostbyaddr (not mocked by its tests)"},
        "BigCodeBench/289": {"cause": "missing_library", "detail": "tensorflow"}}
    assert causes["by_cause"] == {"missing_library": 1, "needs_network": 1}
    assert summary["excluded_tasks"] == ["BigCodeBench/176", "BigCodeBench/289"] and summary["n_tasks"] == 1
    line = "bigcodebench: 2 of 3 tasks excluded (66.7%): library not installed 1 (tensorflow 1); needs network 1"
    assert line in capsys.readouterr().err.splitlines()


def test_sweep_script_prints_the_summary_and_writes_causes(data_dir, tmp_path, capsys, monkeypatch):
    _needs_tensorflow_missing()
    out = tmp_path / "sweep.json"
    monkeypatch.setattr(sys, "argv", ["bcb_reference_sweep.py", "--data_dir", str(data_dir), "--start", "289",
                                      "--limit", "1", "--out", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "eval" / "perf" / "bcb_reference_sweep.py"), run_name="__main__")
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "bigcodebench: 1 of 1 tasks excluded (100.0%): library not installed 1 (tensorflow 1)" in printed
    result = json.loads(out.read_text())
    assert result["excluded_by_cause"] == {"missing_library": 1} and result["missing_libraries"] == {"tensorflow": 1}
    assert result["excluded"]["BigCodeBench/289"]["verdict"].startswith("fail: ModuleNotFoundError")


class _FlakyOnce(BigCodeBench):
    """Test double for the rerun rule only: the first run of a reference fails, later ones pass."""

    def __init__(self, first: str):
        super().__init__()
        self.first, self.calls = first, 0

    def _run(self, problem, solution, sandbox, timeout_scale):
        from codeblock_eval.benchmarks.base import Verdict

        self.calls += 1
        if self.calls == 1:
            return Verdict("fail", {"error": self.first})
        return Verdict("pass", {})


@pytest.mark.parametrize(("first", "expected", "calls"), [
    ("AssertionError: 0.51 != 0.5", "flaky: fail: AssertionError: 0.51 != 0.5", 2),
    # An environmental cause is not retried: it would fail the same way, and reruns cost sweep time.
    ("ModuleNotFoundError: No module named 'cv2'", "fail: ModuleNotFoundError: No module named 'cv2'", 1),
])
def test_failures_without_environmental_cause_are_rerun_once(data_dir, first, expected, calls):
    bench = _FlakyOnce(first)
    problem = bench.load_problems(data_dir)[0]
    assert bench._reference_verdict(problem, None, 1.0) == expected and bench.calls == calls


def test_with_the_extra_a_seaborn_task_is_scored(data_dir, sandbox, tmp_path):
    if importlib.util.find_spec("seaborn") is None:
        pytest.skip(EXTRA_HINT)
    bench = get_benchmark("bigcodebench")
    problems = [p for p in bench.load_problems(data_dir) if p.task_id == "BigCodeBench/9"]
    summary = evaluate_samples(bench, problems, [{"task_id": "BigCodeBench/9",
                                                  "solution": bench.reference_program(problems[0])}],
                               out_dir=tmp_path, allow_code_execution=True, sandbox=sandbox, progress=False)
    assert summary["n_excluded"] == 0 and summary["pass@1"] == 1.0


def test_every_library_of_the_extra_is_pinned():
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["bigcodebench"]
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731 - PEP 503 name normalisation
    pinned = {norm(line.split("==")[0]) for line in (ROOT / "constraints.txt").read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    unpinned = [req for req in extra if norm(re.split(r"[<>=!~\[;]", req)[0]) not in pinned]
    assert not unpinned, f"pin these in constraints.txt (make lock): {unpinned}"


def test_environment_key_ignores_a_distribution_seen_twice(monkeypatch):
    """The sweep script puts plugin/ (the editable install's egg-info) on sys.path; the harness does not. Both must
    compute the same key, or the sweep's verdicts are never reused."""
    from codeblock_eval.benchmarks.bigcodebench import environment_fingerprint

    before = environment_fingerprint()
    monkeypatch.setattr(sys, "path", [str(ROOT / "plugin"), str(ROOT / "plugin"), *sys.path])
    assert environment_fingerprint() == before


class _SlowReference(BigCodeBench):
    """Test double for the cache rule only: a reference that needs twice the official time limit."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def _run(self, problem, solution, sandbox, timeout_scale):
        from codeblock_eval.benchmarks.base import Verdict

        self.calls += 1
        return Verdict("pass", {}) if timeout_scale >= 2 else Verdict("timeout", {"reason": "suite ran past its limit"})


def test_a_cached_timeout_is_rerun_with_a_longer_limit_and_reused_otherwise(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CODEBLOCK_CACHE_DIR", str(tmp_path))
    bench = _SlowReference()
    problems = bench.load_problems(data_dir)[:1]
    task = problems[0].task_id
    assert list(bench.prepare(problems, None, parallel=1, timeout_scale=1.0)["excluded"]) == [task] and bench.calls == 1
    # Same limit: the cached timeout stands (no rerun).
    assert list(bench.prepare(problems, None, parallel=1, timeout_scale=1.0)["excluded"]) == [task] and bench.calls == 1
    # A longer limit runs it again; the pass it gets is final.
    assert bench.prepare(problems, None, parallel=1, timeout_scale=2.0)["excluded"] == {} and bench.calls == 2
    assert bench.prepare(problems, None, parallel=1, timeout_scale=3.0)["excluded"] == {} and bench.calls == 2
