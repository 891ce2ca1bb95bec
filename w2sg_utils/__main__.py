"""``python -m w2sg_utils``: the Chapter 5 command line (see :mod:`w2sg_utils.experiments.cli`)."""

from .experiments.cli import main

raise SystemExit(main())
