"""``python -m codeblock.cli``: the same as the ``codeblock`` console script."""

import sys

from codeblock.cli import main

sys.exit(main())
