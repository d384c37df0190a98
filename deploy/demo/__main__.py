"""``python -m deploy.demo``."""

import sys

from .main import main

sys.exit(main())
