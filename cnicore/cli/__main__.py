"""``python -m cnicore.cli``: the ``cnicore`` command."""

import sys

from cnicore.cli._main import main

sys.exit(main())
