"""``python -m codeblock.models NAME...``: resolve (install + convert) embedded models and print their folders."""

from codeblock.models import _main

raise SystemExit(_main())
