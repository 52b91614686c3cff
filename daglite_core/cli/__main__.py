"""``python -m daglite_core.cli``: the ``daglite`` command."""

import sys

from . import main

sys.exit(main())
