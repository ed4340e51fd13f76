"""``python -m hookwise`` runs the ``hookwise`` command."""

from hookwise.cli import main

if __name__ == "__main__":
    main()
