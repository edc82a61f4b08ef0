#!/usr/bin/env python
"""The fault battery by hand: the quick profile CI runs, the long soak, and Celery beside them.

    .venv/bin/python benchmarks/fault_battery.py --profile soak --celery --markdown

The harness lives in tests/faults/ (one harness for CI and for this); see docs/reliability.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from faults.battery import main

if __name__ == "__main__":
    sys.exit(main())
