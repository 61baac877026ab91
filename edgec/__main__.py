"""``python -m edgec`` runs the command-line interface."""

from edgec.cli import main

main()
