"""The test groups of tests/conftest.py really keep each group on one pytest-xdist worker.

A pytest or pytest-xdist upgrade has broken this silently before (pytest 9.2 with pytest-xdist 3.8,
pytest-dev/pytest-xdist#1386): every worker then started its own Spark cluster and built its own
warehouses, and the suite took 21 minutes instead of about 12. This test fails instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import XDIST_GROUPS, xdist_group_of


def test_grouped_tests_carry_their_group_in_the_node_id(request: pytest.FixtureRequest) -> None:
    if not request.config.getoption("loadgroup", default=False):
        pytest.skip("not a pytest-xdist worker with --dist loadgroup (make test runs it that way)")
    grouped = {item.nodeid: group for item in request.session.items
               if (group := xdist_group_of(Path(str(item.fspath)))) is not None}
    # loadgroup schedules by the "@group" suffix it appends to the node id
    wrong = sorted(nodeid for nodeid, group in grouped.items() if not nodeid.endswith(f"@{group}"))
    assert not wrong, f"{len(wrong)} grouped tests without their @group suffix, e.g. {wrong[:3]}"


def test_every_group_path_exists() -> None:
    tests = Path(__file__).resolve().parents[1]
    missing = [prefix for prefix in XDIST_GROUPS if not (tests / prefix).exists()]
    assert not missing, f"XDIST_GROUPS names paths that are gone: {missing}"
