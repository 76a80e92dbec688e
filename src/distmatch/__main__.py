"""``python -m distmatch`` runs the command-line interface."""

from distmatch.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
