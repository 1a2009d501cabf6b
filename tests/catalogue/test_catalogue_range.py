"""The ``where`` range form of the metric catalogue (docs/metrics.md, "The metric catalogue"):
bounds are bound parameters and type-checked like values."""

from __future__ import annotations

import pytest

from expkit.catalogue import parse_catalogue
from expkit.errors import ConfigError
from expkit.metrics_sql import user_facts_query


def _metric(where: dict[str, object]) -> dict[str, object]:
    return {"metrics": {"m": {"title": "m", "numerator": {"table": "requests", "agg": "count", "where": where},
                              "denominator": {"table": "requests", "agg": "count"},
                              "direction": "increase", "format": "percent"}}}


def test_range_condition_is_bound_parameters() -> None:
    cat = parse_catalogue(_metric({"status": "ok", "k_returned": {"min": 1, "max": 5}}))
    q = user_facts_query(cat)
    assert "r.k_returned >= $mp_1 AND r.k_returned <= $mp_2" in q.template.sql
    assert q.values == {"mp_0": "ok", "mp_1": 1, "mp_2": 5}


@pytest.mark.parametrize("where, message", [
    ({"status": {"min": 1}}, "needs a numeric column"),
    ({"k_returned": {"min": 1.5}}, "does not fit"),
    ({"k_returned": {}}, "a range is"),
    ({"k_returned": {"min": 3, "max": 1}}, "above its max"),
    ({"k_returned": {"least": 1}}, r"where.: k_returned: least: unknown key \(a range has min and max\)"),
])
def test_range_condition_errors(where: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_catalogue(_metric(where), "params/metrics.yaml")
