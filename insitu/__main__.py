"""``python -m insitu``: the ``insitu`` command line."""

import sys

from insitu.cli import main

sys.exit(main())
