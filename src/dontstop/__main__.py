"""python -m dontstop ... (same as the `dontstop` console script)."""
import sys

from .cli import main

sys.exit(main())
