"""``python -m ephemera_tui``: the same command line as the ``ephemera`` script."""

from .cli.main import main

main()
