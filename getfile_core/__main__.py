"""Lets ``python -m getfile_core`` behave exactly like the ``getfile`` script."""

from getfile_core.cli import main

raise SystemExit(main())
