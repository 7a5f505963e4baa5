"""``python -m persistence``: see :mod:`persistence._cli`."""

from persistence._cli import main

raise SystemExit(main())
