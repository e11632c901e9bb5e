"""``python -m mlcycle``: the command-line interface."""

from mlcycle.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
