"""``python -m ephemera_tui.cli``: the same command line as the ``ephemera`` script."""

from .main import main

main()
