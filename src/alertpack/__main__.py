"""``python -m alertpack``: the ``alertpack`` command."""

import sys

from alertpack.cli import main

sys.exit(main())
