"""glibc malloc tuning for CPU training (codeblock.training.cpu_memory): freed large buffers go back to the OS.

The probe reproduces what CPU training does to the heap: one large free raises glibc's dynamic mmap threshold, so the
next, smaller activation-sized buffers come from the heap and stay resident after they are freed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not os.path.exists("/proc/self/status"),
                                reason="glibc/Linux only")

PROBE = textwrap.dedent("""
    import sys
    from codeblock.training.cpu_memory import malloc_tuning_state, tune_malloc_for_training
    applied = tune_malloc_for_training() if sys.argv[1] == "tuned" else False
    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    def touched(n):
        b = bytearray(n)
        b[::4096] = b"x" * len(b[::4096])
        return b
    big = touched(16 << 20)
    del big                      # an mmapped chunk freed: glibc raises its threshold to 16 MiB
    blocks = [touched(8 << 20) for _ in range(64)]   # 512 MiB in 8 MiB buffers, like activations
    keep = blocks[-1]            # the last one pins the heap top, as live tensors do
    del blocks
    print(applied, rss_mb(), malloc_tuning_state()["source"])
""")


def _probe(mode: str, **env) -> tuple[str, int, str]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}).stdout.split(maxsplit=2)
    return out[0], int(out[1]), out[2].strip()


def test_tuning_returns_freed_buffers_to_the_os():
    applied, rss_default, src_default = _probe("default")
    applied_t, rss_tuned, src_tuned = _probe("tuned")
    assert applied == "False" and src_default.startswith("glibc default")
    assert applied_t == "True" and src_tuned == "codeblock"
    # default glibc keeps the ~504 MiB of freed 8 MiB buffers resident; tuned, only the one kept buffer remains
    assert rss_default - rss_tuned > 300, (rss_default, rss_tuned)


def test_tuning_can_be_switched_off_and_respects_the_users_setting():
    applied, _, src = _probe("tuned", CODEBLOCK_MALLOC_TUNING="0")
    assert applied == "False" and src.startswith("glibc default")
    applied, rss, src = _probe("tuned", MALLOC_MMAP_THRESHOLD_="131072")
    assert applied == "False" and src == "environment" and rss < 200
