"""`python -m runner` is the same as the `alloclab` command."""

import sys

from runner.cli import main

sys.exit(main())
