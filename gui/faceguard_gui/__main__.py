"""``python -m faceguard_gui [--screenshot DIR] [PHOTO ...]``."""

from faceguard_gui.app import main

raise SystemExit(main())
