"""`python -m renderer ...`: the same command line as `triplane-render`."""
import sys

from .cli import main

sys.exit(main())
