"""`python -m renderer ...`: the same command line as `triplane-render`."""

import sys

from .cli import run

sys.exit(run())
