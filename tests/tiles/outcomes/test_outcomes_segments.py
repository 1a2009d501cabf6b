"""Segments whose effect differs, end to end: synthetic warehouses with and without a planted
interaction (docs/synthetic.md, ``--segment-lift``), rolled up, through the lift tile."""

from __future__ import annotations

import pytest
from outcomes_support import Built, build

from expkit.tiles.base import headline_of
from expkit.tiles.lift import SEGMENT_ALPHA, SEGMENT_MIN_USERS, Lift


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Built:
    # No overall lift; +60% click and save propensities for the users in region eu only.
    return build(tmp_path_factory.mktemp("planted"), days=2, users=15000, seed=5, lift={"treatment": 0.0},
                 segment_lifts=["region=eu:0.6"])


@pytest.fixture(scope="module")
def aa(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("aa"), days=2, users=12000, seed=31, lift={"treatment": 0.0})


@pytest.mark.slow
def test_planted_segment_is_flagged(planted: Built) -> None:
    r = planted.run("lift", window="7d")
    segments = r.headline["segments"]
    ctr = [s for s in segments if s["metric"] == "ctr" and s["slice"] == "region" and s["value"] == "eu"]
    assert ctr, segments
    s = ctr[0]
    assert s["adj_pvalue"] < SEGMENT_ALPHA and s["pvalue"] <= s["adj_pvalue"]
    truth = planted.truth["segment_lifts"][0]["metric_lift"]["ctr"]["treatment"]  # 0.6
    assert s["rel_lift"] == pytest.approx(truth, abs=0.2)
    assert abs(s["rest_rel_lift"]) < 0.1
    assert set(s) >= {"metric", "slice", "value", "rel_lift", "rest_rel_lift", "pvalue", "adj_pvalue"}
    # the compute step's typed result is what the headline shows
    assert isinstance(r.result, Lift) and r.headline == headline_of(r.result)
    typed = [t for t in r.result.segments if (t.metric, t.slice, t.value) == ("ctr", "region", "eu")]
    assert typed and typed[0].adj_pvalue == s["adj_pvalue"]
    assert any(n.startswith("effect differs in region=eu: ") and "elsewhere, adjusted p = " in n for n in r.notes)
    # Only user-attribute slices are tested (cohort, region, client), values with enough users.
    assert 0 < r.headline["segment_tests"] < len(r.headline["arms"]["treatment"]["metrics"]) * (3 + 4 + 4)
    assert {s["slice"] for s in segments} <= {"cohort", "region", "client"}
    assert f"at least {SEGMENT_MIN_USERS} users per arm" in r.headline["segment_adjustment"]


@pytest.mark.slow
def test_aa_flags_no_segment(aa: Built) -> None:
    r = aa.run("lift", window="7d")
    assert r.headline["segment_tests"] >= 8
    assert r.headline["segments"] == []
    assert not any(n.startswith("effect differs") for n in r.notes)
