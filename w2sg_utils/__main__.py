"""``python -m w2sg_utils``: the Chapter 5 command line (see :mod:`w2sg_utils.cli`)."""

from .cli import main

raise SystemExit(main())
