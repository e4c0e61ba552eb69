"""``python -m codegen``: the ``itly`` command without the console script."""

import sys

from codegen.cli import main

sys.exit(main())
