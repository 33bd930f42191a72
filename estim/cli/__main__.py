"""``python -m estim.cli``: the `estim` command."""

from estim.cli import main

main()
