"""`python -m runner` is the same as the `alloclab` command."""

import sys

from runner.cli.main import main

sys.exit(main())
