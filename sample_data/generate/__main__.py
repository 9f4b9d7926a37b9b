"""python -m sample_data.generate: see cli.py."""

import sys

from .cli import main

sys.exit(main())
