"""The deep-dive tests' warehouse, generated and rolled up once per session.

``planted``: 2 experiment days after 2 pre-period days (so the lift is CUPED-adjusted), 12,000
users, no overall lift and +60% click and save propensities for the treatment's users in region eu
(a segment the lift tile flags, docs/readout.md, "Segments").
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from deepdive_support import Built, build

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
from report_browser import browser  # noqa: E402, F401 - the shared Chromium fixture


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("planted"), days=2, pre_days=2, users=12000, seed=5,
                 lift={"treatment": 0.0}, segment_lifts=["region=eu:0.6"])
