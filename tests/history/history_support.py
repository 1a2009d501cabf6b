"""Constants of the history tests' warehouse (fixtures in conftest.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "params" / "experiment.yaml"
END = dt.date(2026, 11, 14)
DAYS = 9
FIRST = END - dt.timedelta(days=DAYS - 1)
