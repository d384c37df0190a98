"""``python -m services.simulator``: see :mod:`services.simulator.cli`."""

import sys

from .cli import main

sys.exit(main())
