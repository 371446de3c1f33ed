"""`python -m router`: the same as the `alert-router` command."""

from router.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
