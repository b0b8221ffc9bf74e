"""`python -m controlarm` runs the command-line interface."""

from .cli import main

main()
