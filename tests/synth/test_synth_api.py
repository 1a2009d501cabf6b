"""expkit.synth API: incident specs and refusal of bad calls."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from expkit.errors import ExpkitError
from expkit.schema import EVENT_TABLES
from expkit.synth import INCIDENTS, Incident, generate, parse_incident, warehouse

SPEC_NAMES = ["latency_spike", "error_burst", "cache_failure", "coverage_drop", "stale_partition",
              "late_data", "traffic_imbalance", "ctr_collapse", "orphan_clicks",
              "duplicate_events"]


def test_incident_registry_matches_spec() -> None:
    assert sorted(INCIDENTS) == sorted(SPEC_NAMES)
    for name, info in INCIDENTS.items():
        assert info.name == name
        assert info.description and "\n" not in info.description
        assert info.default_minutes >= 1 and info.tables and info.metrics
        # The default window ends by the end of the last day.
        assert info.default_start_minute + info.default_minutes <= 1440


@pytest.mark.parametrize(("spec", "expected"), [
    ("latency_spike@14:00/30", Incident("latency_spike", 840, 30)),
    ("error_burst@0:05/1", Incident("error_burst", 5, 1)),
    ("cache_failure@23:00/60", Incident("cache_failure", 1380, 60)),
    ("coverage_drop@09:30", Incident("coverage_drop", 570, INCIDENTS["coverage_drop"].default_minutes)),
    ("ctr_collapse", Incident("ctr_collapse", -1440, 2880)),
    ("latency_spike", Incident("latency_spike", 840, 30)),
])
def test_parse_incident(spec: str, expected: Incident) -> None:
    assert parse_incident(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("nonsense", r"unknown incident 'nonsense'.*valid names: latency_spike, error_burst"),
    ("latency_spike@14:00/0", r"MINUTES must be at least 1"),
    ("latency_spike@25:00/30", r"not a valid HH:MM"),
    ("latency_spike@14:75/30", r"not a valid HH:MM"),
    ("latency_spike@23:50/30", r"runs past the end of the last day"),
    ("latency_spike@14h/30", r"malformed incident spec .*NAME@HH:MM/MINUTES"),
    ("latency_spike@14:00/-5", r"malformed incident spec"),
    ("", r"malformed incident spec"),
])
def test_parse_incident_rejects(spec: str, message: str) -> None:
    with pytest.raises(ExpkitError, match=message):
        parse_incident(spec)


GOOD = {"days": 1, "end": dt.date(2026, 11, 14), "users": 50}


@pytest.mark.parametrize(("kw", "message"), [
    ({"days": 0}, r"days must be a whole number >= 1"),
    ({"users": 0}, r"users must be a whole number from 1"),
    ({"incidents": ["bogus"]}, r"unknown incident 'bogus'.*valid names"),
    ({"incidents": ["latency_spike@1400/30"]}, r"malformed incident spec"),
    ({"buckets": {"control": 0.5, "treatment": 0.4}}, r"allocation sums to 0.9, not 1"),
    ({"buckets": {"a": 0.5, "b": 0.5}}, r"control 'control' is not one of the buckets \(a, b\)"),
    ({"lift": {"control": 0.1}}, r"lift names 'control'"),
    ({"end": "2026-13-01"}, r"end must be a date YYYY-MM-DD"),
    ({"shadow_share": 0.9}, r"shadow_share must be in"),
])
def test_bad_calls_raise_and_write_nothing(tmp_path, kw, message) -> None:
    out = tmp_path / "wh"
    with pytest.raises(ExpkitError, match=message) as err:
        generate(out, **(GOOD | kw))
    assert "\n" not in str(err.value)
    assert not out.exists()


def test_refuses_file_and_existing_events(tmp_path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ExpkitError, match=r"is a file; choose a folder"):
        generate(f, **GOOD)
    out = tmp_path / "wh"
    generate(out, **GOOD)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(ExpkitError, match=re.escape("already contains events; choose an empty "
                                                    "folder or delete it")):
        generate(out, **GOOD)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_empty_existing_folder_is_fine(tmp_path) -> None:
    (tmp_path / "wh").mkdir()
    truth = generate(tmp_path / "wh", **GOOD)
    assert truth["users"] == 50
    assert not (tmp_path / "wh" / ".staging").exists()


@given(hh=st.integers(0, 23), mm=st.integers(0, 59), minutes=st.integers(1, 1440),
       name=st.sampled_from(SPEC_NAMES))
def test_parse_incident_window_arithmetic(hh: int, mm: int, minutes: int, name: str) -> None:
    spec = f"{name}@{hh:02d}:{mm:02d}/{minutes}"
    if hh * 60 + mm + minutes > 1440:
        with pytest.raises(ExpkitError, match="runs past the end of the last day"):
            parse_incident(spec)
        return
    inc = parse_incident(spec)
    assert inc == Incident(name, hh * 60 + mm, minutes)
    start, end = inc.window_ms(1_000_000_000_000)
    assert end - start == minutes * 60_000
    assert parse_incident(inc) is inc


def test_interrupted_run_leaves_no_partial_partition(tmp_path, monkeypatch) -> None:
    """A run that dies during its second day leaves the first day complete, the second day
    only in the staging folder, and no truth.json."""
    real = warehouse.build_chunk

    def failing(spec):
        if spec.ordinal == dt.date(2026, 11, 14).toordinal():
            raise RuntimeError("killed")
        return real(spec)

    monkeypatch.setattr(warehouse, "build_chunk", failing)
    out = tmp_path / "wh"
    with pytest.raises(RuntimeError, match="killed"):
        generate(out, **(GOOD | {"days": 2}))
    for table in EVENT_TABLES:
        assert [p.name for p in (out / "events" / table).iterdir()] == ["event_date=2026-11-13"]
    assert not (out / "truth.json").exists()
    assert not list((out / "events").rglob("*.tmp"))


def test_users_do_not_depend_on_warehouse_size() -> None:
    from expkit.synth.model import Model, make_users

    cum = np.array([0.5, 1.0])
    small, large = (make_users(Model(), 3, 0, n, cum) for n in (100, 5000))
    for field in ("bucket", "cohort", "activity", "p_click", "other_rate"):
        assert np.array_equal(getattr(small, field), getattr(large, field)[:100]), field


class _EdgeRng:
    """A generator stub returning the extreme uniforms float32 can produce."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self, shape, dtype=np.float64):
        return np.full(shape, self.value, dtype=dtype)


@pytest.mark.parametrize("u", [0.0, float(np.nextafter(np.float32(1), np.float32(0)))])
def test_slates_at_uniform_extremes(u: float) -> None:
    from expkit.synth.model import Model, _slates, make_catalog

    model = Model()
    lookup = make_catalog(model, 0).lookup
    items = _slates(_EdgeRng(u), lookup, model.catalog_size, 3, model.k)
    assert items.shape == (3, model.k)
    assert (np.diff(items, axis=1) > 0).all() and items.min() >= 0
    assert items.max() < model.catalog_size
