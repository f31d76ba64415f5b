"""``python -m tui``: the same as the ``getfile-tui`` command."""

from tui.app import main

raise SystemExit(main())
