"""`python -m pipeline` runs the perfreport command line."""

from pipeline.cli import console_main

console_main()
