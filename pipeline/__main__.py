"""`python -m pipeline` runs the perfreport command line."""

import sys

from pipeline.cli import main

sys.exit(main())
