"""``python -m emulator``: the same as ``henpin emulator``."""

from emulator.server import main

raise SystemExit(main())
