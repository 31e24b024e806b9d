"""`python -m cowdemo.cli`: the same as the `cowdemo` command."""

import sys

from cowdemo.cli import main

sys.exit(main())
