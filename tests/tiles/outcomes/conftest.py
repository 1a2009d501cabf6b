"""Synthetic warehouses for the outcome-tile tests, each generated and rolled up once per session.

* ``clean``: 3 healthy days, 5000 users, a true +30% lift of click and save propensities of
  the treatment (detectable at this size; recall and depth move less, see truth.json).
* ``imbalance``: 2 days, ``traffic_imbalance`` on the last (30% of treatment users lost).
* ``collapse``: 2 days, ``ctr_collapse`` (90% of clicks lost on both days).
"""

from __future__ import annotations

import pytest
from outcomes_support import Built, build


@pytest.fixture(scope="session")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("clean"), days=3, users=5000, seed=21, lift={"treatment": 0.3})


@pytest.fixture(scope="session")
def imbalance(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("imbalance"), days=2, users=3000, seed=12, incidents=["traffic_imbalance"])


@pytest.fixture(scope="session")
def collapse(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("collapse"), days=2, users=3000, seed=13, incidents=["ctr_collapse"])
