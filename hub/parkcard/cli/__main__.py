"""`python -m parkcard.cli`: the same as the `parkcard` command."""

from parkcard.cli import main

main()
