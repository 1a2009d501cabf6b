"""Capping per-user values (catalogue key ``cap``; docs/metrics.md, "Capping per-user values").

References are computed here with numpy and pandas, never read back from expkit:

* the threshold of a ``{quantile: q}`` cap is ``np.quantile(values, q, method="linear")`` (Hyndman &
  Fan type 7, linear between order statistics: DuckDB's ``quantile_cont`` and Spark's ``percentile``
  compute the same) over the non-zero per-user window numerators of the experiment's users, both
  arms, slice ``all`` (zeros left out as Statsig does);
* each user's numerator is ``min(value, threshold)`` in every sum (n, Σnum, Σden, Σnum², Σden², Σnum·den
  and the nine CUPED sums, whose pre-period covariate is not capped), in every slice.

Two levels: the ``ratio_stats`` SQL over hand-made per-user facts (two experiments, several days per
user, an impression-attribute slice, pre-period values, an attribute filter), and the rollups of a
synthetic warehouse against a pandas computation from its raw events.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from catalogue_support import END, HERE, START, Built, params_folder
from test_catalogue_reference import _day_facts, _events

from expkit.catalogue import LEGACY_STATS_DIGEST, Catalogue, parse_catalogue
from expkit.config import load_experiment
from expkit.engines import get_engine
from expkit.errors import ConfigError
from expkit.metrics_sql import builtin_catalogue, pre_columns, ratio_stats_query, user_facts_schema, user_pre_schema
from expkit.readers import ALL_STAT_COLUMNS, STAT_COLUMNS, ratio_stats
from expkit.rollup import STATS_ROLLUP, build_range
from expkit.rollup_schema import PLAYED_ITEMS_SCHEMA
from expkit.schema import SLICE_COLUMNS
from expkit.stats.cuped import RATIO_COVARIATE_KEYS
from expkit.tiles.base import resolve_params
from expkit.tiles.display import headline_html
from expkit.tiles.ratio import ratio_metric, ratio_tile
from expkit.warehouse import Warehouse

PLAYS = {"title": "Plays per user", "numerator": {"table": "plays", "agg": "count"}, "denominator": "users",
         "direction": "increase", "format": "number"}


def _catalogue(**metrics: dict[str, Any]) -> dict[str, Any]:
    return {"metrics": metrics}


def _builtin(name: str, **extra: Any) -> dict[str, Any]:
    return {"title": name, "builtin": name, "direction": "increase", "format": "number", **extra}


# --- the catalogue key -----------------------------------------------------------------------------

@pytest.mark.parametrize(("metric", "key", "words"), [
    (_builtin("ctr", cap={"quantile": 0.999}), "metrics.m.cap", "builtin ctr is a share (clicks / impressions)"),
    (_builtin("recall", cap={"value": 3}), "metrics.m.cap", "builtin recall is a share (hits / plays)"),
    (_builtin("save_rate", cap={"quantile": 0.99}), "metrics.m.cap", "builtin save_rate is a share"),
    (_builtin("latency_p95", cap={"quantile": 0.99}), "metrics.m.cap", "builtin latency_p95 is a health metric"),
    ({**PLAYS, "numerator": {"table": "requests", "agg": "count", "where": {"status": "error"}},
      "denominator": {"table": "requests", "agg": "count"}, "cap": {"quantile": 0.99}}, "metrics.m.cap",
     "its numerator is a share of its denominator's rows"),
    ({**PLAYS, "cap": {"quantile": 0.99, "value": 10}}, "metrics.m.cap", "either {quantile: q} or {value: x}"),
    ({**PLAYS, "cap": {}}, "metrics.m.cap", "either {quantile: q} or {value: x}"),
    ({**PLAYS, "cap": {"percentile": 99.9}}, "metrics.m.cap.percentile", "unknown key (a cap has quantile or value)"),
    ({**PLAYS, "cap": {"quantile": 99.9}}, "metrics.m.cap.quantile", "less than 1"),
    ({**PLAYS, "cap": {"quantile": 0.1}}, "metrics.m.cap.quantile", "greater than or equal to 0.5"),
    ({**PLAYS, "cap": {"value": 0}}, "metrics.m.cap.value", "greater than 0"),
    ({**PLAYS, "cap": 0.999}, "metrics.m.cap", "valid dictionary"),
])
def test_a_cap_where_it_makes_no_sense_is_refused_in_one_line(metric: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_catalogue(_catalogue(m=metric), "params/metrics.yaml")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"params/metrics.yaml: key '{key}': "), msg
    assert words in msg, msg


def test_a_cap_is_allowed_on_mean_like_numerators() -> None:
    """Per-user means, session depth, and a ratio whose numerator is not a share of its denominator's rows."""
    cat = parse_catalogue(_catalogue(
        plays=PLAYS | {"cap": {"quantile": 0.999}},
        depth=_builtin("session_depth", cap={"value": 40}),
        plays_per_session=PLAYS | {"denominator": {"table": "requests", "agg": "count_distinct:session_id"},
                                   "cap": {"quantile": 0.99}},
        ctr=_builtin("ctr"),
    ))
    assert cat.capped_ids == ["plays", "depth", "plays_per_session"]
    assert cat["plays"].cap is not None and cat["plays"].cap.describe() == "99.9th percentile"


def test_the_cli_refuses_a_capped_ratio_with_exit_2(tmp_path: Path) -> None:
    from test_catalogue_definitions import _one_line, expkit

    data = yaml.safe_load((HERE / "metrics.yaml").read_text())
    data["metrics"]["top3_ctr"]["cap"] = {"quantile": 0.999}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    params = params_folder(tmp_path / "params", tmp_path / "bad.yaml")
    proc = expkit("rollup", "--params", str(params), "--warehouse", str(tmp_path / "none"), "--date", str(END))
    _one_line(proc, str(params.parent / "metrics.yaml"), "key 'metrics.top3_ctr.cap'", "share")


def test_a_cap_is_part_of_the_statistics_definition_only() -> None:
    """Without caps the digests are those of before (no rebuild); a cap makes the statistics stale, not
    the per-user facts; the shipped template holds no cap (empty regions)."""
    assert builtin_catalogue().stats_digest() == LEGACY_STATS_DIGEST
    plain = parse_catalogue(_catalogue(plays=PLAYS))
    capped = parse_catalogue(_catalogue(plays=PLAYS | {"cap": {"quantile": 0.999}}))
    other = parse_catalogue(_catalogue(plays=PLAYS | {"cap": {"quantile": 0.99}}))
    assert capped.facts_digest() == plain.facts_digest()
    assert len({plain.stats_digest(), capped.stats_digest(), other.stats_digest()}) == 3
    assert "/*metric_caps:begin*//*metric_caps:end*/" in ratio_stats_query(builtin_catalogue()).template.sql
    q = ratio_stats_query(capped)
    assert q.values == {"cap_0": 0.999} and "$cap_0" in q.template.sql and "0.999" not in q.template.sql


# --- the SQL over hand-made per-user facts -----------------------------------------------------------

SQL_CATALOGUE = _catalogue(
    ctr=_builtin("ctr"),
    depth=_builtin("session_depth", cap={"quantile": 0.75}),
    plays=PLAYS | {"cap": {"quantile": 0.9}},
    imps=PLAYS | {"numerator": {"table": "impressions", "agg": "count"}, "cap": {"value": 7.0}},
)
"""Capped: session depth (quantile), plays per user (quantile), impressions per user (a fixed value, with
impression-attribute slices); uncapped: CTR."""


def _facts(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-user facts of two days and two experiments with heavy-tailed counts (user_facts rows: slice
    ``all`` and ``surface``), and each user's pre-period values (some users without history)."""
    rows, pre = [], []
    for exp_id, scale, users in (("exp_a", 3.0, 300), ("exp_b", 30.0, 120)):
        for u in range(users):
            uid = (1 if exp_id == "exp_a" else 2) * 10_000 + u
            bucket = "control" if u % 2 else "treatment"
            region = ("eu", "na", "apac")[u % 3]
            for day in range(1 + u % 2):  # half of the users on both days
                surfaces = {"home": rng.poisson(4), "search": int(rng.pareto(1.5) * scale)}
                plays, sessions = int(rng.pareto(1.2) * scale), 1 + rng.poisson(1)
                clicks = {s: rng.binomial(n, 0.2) for s, n in surfaces.items()}
                common = {"experiment_id": exp_id, "bucket": bucket, "user_id": uid, "cohort": "new",
                          "region": region, "client": "web", "first_ms": day * 86_400_000 + u,
                          "saves": 0, "m_plays_num": plays}
                shown = sum(surfaces.values())
                rows.append({**common, "slice": "all", "slice_value": "all", "impressions": shown,
                             "clicks": sum(clicks.values()), "sessions": sessions, "depth": int(rng.pareto(1.3) * 4),
                             "m_imps_num": shown})
                for s, n in surfaces.items():
                    rows.append({**common, "slice": "surface", "slice_value": s, "impressions": n, "clicks": clicks[s],
                                 "sessions": 0, "depth": 0, "m_plays_num": 0, "m_imps_num": n})
            if u % 4:
                pre.append({"user_id": uid, **{c: float(rng.poisson(5)) for m in ("ctr", "depth", "plays", "imps")
                                               for c in pre_columns(m)}})
    return pd.DataFrame(rows), pd.DataFrame(pre)


@pytest.fixture(scope="module")
def sql_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalogue, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    cat = parse_catalogue(SQL_CATALOGUE, "capping.yaml")
    facts, pre = _facts(np.random.default_rng(20261205))
    folder = tmp_path_factory.mktemp("capping-sql")
    schema = user_facts_schema(cat)
    facts_file, pre_file = folder / "user_facts.parquet", folder / "user_pre.parquet"
    pq.write_table(pa.Table.from_pandas(facts[schema.names], schema=schema, preserve_index=False), facts_file)
    pre_schema = user_pre_schema(cat)
    pq.write_table(pa.Table.from_pandas(pre[pre_schema.names], schema=pre_schema, preserve_index=False), pre_file)
    sources = {"user_facts": [facts_file], "played_items": PLAYED_ITEMS_SCHEMA, "user_pre": [pre_file]}
    q = ratio_stats_query(cat)
    engine = get_engine("duckdb")
    try:
        # no played pairs: Recall@K is not among the capped metrics checked here (any window start does)
        got = engine.query(q.template, q.bind(window_start_ms=0), sources).read_all().to_pandas()
        # the lift tile's re-aggregation with a user-attribute filter (region = eu)
        sql, binding = q.render({"region": ["eu"]}, window_start_ms=0)
        filtered = engine.query(q.template, binding, sources, sql=sql).read_all().to_pandas()
    finally:
        engine.close()
    return cat, facts, pre, got.assign(filtered=False).pipe(lambda d: pd.concat([d, filtered.assign(filtered=True)]))


COLUMNS = {"ctr": ("clicks", "impressions"), "depth": ("depth", "sessions"), "plays": ("m_plays_num", None),
           "imps": ("m_imps_num", None)}


def _expected(cat: Catalogue, facts: pd.DataFrame, pre: pd.DataFrame, metric: str, slice_: str,
              region: str | None) -> pd.DataFrame:
    num, den = COLUMNS[metric]
    cols = [c for c in (num, den) if c]
    keys = ["experiment_id", "user_id"]
    all_rows = facts[facts["slice"] == "all"]
    first = all_rows.sort_values("first_ms").groupby(keys)[["bucket", "region"]].first()
    totals = all_rows.groupby(keys)[cols].sum()
    cap = cat[metric].cap
    threshold: dict[str, float] = {}
    if cap is not None:
        for exp_id, v in totals[num].groupby(level="experiment_id"):
            # the pooled quantile of the window: the experiment's non-zero users, both arms, before any filter
            threshold[exp_id] = cap.value if cap.value is not None else float(
                np.quantile(v[v != 0].to_numpy(float), cap.quantile, method="linear"))
    if slice_ == "surface":
        per_user = facts[facts["slice"] == "surface"].groupby([*keys, "slice_value"])[cols].sum().reset_index()
    else:
        per_user = totals.reset_index().assign(slice_value="all")
    per_user = per_user.merge(first.reset_index(), on=keys)
    if region is not None:
        per_user = per_user[per_user["region"] == region]
    pn, pd_ = pre_columns(metric)
    per_user = per_user.merge(pre[["user_id", pn, pd_]], on="user_id", how="left").fillna({pn: 0.0, pd_: 0.0})
    v = per_user[num].to_numpy(float)
    t = per_user["experiment_id"].map(threshold).to_numpy(float) if cap is not None else np.full(len(v), np.inf)
    x = np.minimum(v, t)
    d = per_user[den].to_numpy(float) if den else np.ones(len(v))
    p_n, p_d = per_user[pn].to_numpy(float), per_user[pd_].to_numpy(float)
    per_user = per_user.assign(
        n=1, sum_num=x, sum_den=d, sum_num2=x * x, sum_den2=d * d, sum_numden=x * d, sum_pre_num=p_n, sum_pre_den=p_d,
        sum_pre_num2=p_n * p_n, sum_pre_den2=p_d * p_d, sum_pre_numden=p_n * p_d, sum_num_pre_num=x * p_n,
        sum_num_pre_den=x * p_d, sum_den_pre_num=d * p_n, sum_den_pre_den=d * p_d, capped_users=(v > t).astype(int),
        cap_value=per_user["experiment_id"].map(threshold) if cap is not None else np.nan)
    out = per_user.groupby(["experiment_id", "bucket", "slice_value"]).agg(
        {**{c: "sum" for c in [*ALL_STAT_COLUMNS, "capped_users"]}, "cap_value": "max"}).reset_index()
    return out.sort_values(["experiment_id", "bucket", "slice_value"]).reset_index(drop=True)


SQL_CASES = [(m, s, r) for m in ("depth", "plays", "imps", "ctr") for s in ("all", "surface") for r in (None, "eu")
             if s == "all" or m in ("imps", "ctr")]  # the others have no impression-attribute slice


@pytest.mark.parametrize(("metric", "slice_", "region"), SQL_CASES)
def test_ratio_stats_caps_each_users_window_numerator(
    sql_run: tuple[Catalogue, pd.DataFrame, pd.DataFrame, pd.DataFrame], metric: str, slice_: str, region: str | None
) -> None:
    cat, facts, pre, got = sql_run
    want = _expected(cat, facts, pre, metric, slice_, region)
    rows = got[(got["metric"] == metric) & (got["slice"] == slice_) & (got["filtered"] == (region is not None))]
    rows = rows.sort_values(["experiment_id", "bucket", "slice_value"]).reset_index(drop=True)
    assert list(rows["bucket"]) == list(want["bucket"]) and list(rows["slice_value"]) == list(want["slice_value"])
    assert len(want) >= 4 and set(want["experiment_id"]) == {"exp_a", "exp_b"}
    np.testing.assert_allclose(rows[ALL_STAT_COLUMNS].to_numpy(float), want[ALL_STAT_COLUMNS].to_numpy(float),
                               rtol=1e-12)
    if cat[metric].cap is None:
        assert rows["cap_value"].isna().all() and rows["capped_users"].isna().all()
        return
    np.testing.assert_allclose(rows["cap_value"].to_numpy(float), want["cap_value"].to_numpy(float), rtol=1e-12)
    assert list(rows["capped_users"]) == list(want["capped_users"])
    assert want["capped_users"].sum() > 0  # the cap bites: not a vacuous comparison
    if cat[metric].cap.quantile is not None:  # type: ignore[union-attr]
        a, b = want.set_index("experiment_id")["cap_value"].groupby(level=0).first()
        assert a != b  # one threshold per experiment


def test_the_cuped_sums_use_the_capped_numerator_and_an_uncapped_covariate(
    sql_run: tuple[Catalogue, pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    """Spelled out for one arm: Σ min(v, t)·pre_num, and Σ pre_num² of the raw pre-period values."""
    cat, facts, pre, got = sql_run
    users = facts[(facts["slice"] == "all") & (facts["experiment_id"] == "exp_b")]
    v = users.groupby("user_id")["m_plays_num"].sum()
    t = np.quantile(v[v != 0].to_numpy(float), 0.9, method="linear")
    arm = users.groupby("user_id")["bucket"].first() == "treatment"
    p = pre.set_index("user_id")["pre_plays_num"].reindex(v.index).fillna(0.0)
    row = got[(got["metric"] == "plays") & (got["slice"] == "all") & ~got["filtered"]
              & (got["experiment_id"] == "exp_b") & (got["bucket"] == "treatment")].iloc[0]
    assert row["sum_num_pre_num"] == pytest.approx(float((np.minimum(v, t) * p)[arm].sum()), rel=1e-12)
    assert row["sum_pre_num2"] == pytest.approx(float((p * p)[arm].sum()), rel=1e-12)
    assert set(RATIO_COVARIATE_KEYS) <= set(got.columns)


# --- rollups of a synthetic warehouse against its raw events -------------------------------------------

CAPS = {"plays_per_user": {"quantile": 0.99}, "items_per_user": {"value": 3}}
"""The test catalogue's per-user means, capped (their per-user facts are unchanged: only statistics rebuild)."""


@pytest.fixture(scope="module")
def capped(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A copy of the test warehouse with the catalogue's per-user means capped, rolled up again."""
    root = tmp_path_factory.mktemp("capped")
    shutil.copytree(built.warehouse.root, root / "warehouse")
    data = yaml.safe_load((HERE / "metrics.yaml").read_text())
    for metric, cap in CAPS.items():
        data["metrics"][metric]["cap"] = cap
    data["metrics"]["plays_per_user"]["tile"] = True
    (root / "capped.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    params = params_folder(root / "params", root / "capped.yaml",
                           "[recall, top3_ctr, rec_play_share, plays_per_user, items_per_user]")
    config = load_experiment(params)
    result = build_range(root / "warehouse", START, END, config, backfill=True)
    assert all(not r.rows or set(r.rows) == {STATS_ROLLUP} for r in result), "only the statistics are rebuilt"
    return Built(Warehouse.open(root / "warehouse"), params, config)


def _reference(wh: Warehouse, metric: str, window: str, slice_: str) -> pd.DataFrame:
    """n, the delta-method sums, the threshold and the capped users per arm and slice value, from raw events."""
    hour = window == "1h"
    days = [END - dt.timedelta(days=i) for i in range({"7d": 7, "cum": 7}.get(window, 1) - 1, -1, -1)]
    days = [d for d in days if d >= START and wh.event_files("requests", d)]
    req = _events(wh, "requests", days, hour).sort_values("timestamp_ms", kind="stable")
    first = req.groupby("user_id").first()[["bucket", "region"]]
    facts = pd.concat([_day_facts(wh, d, metric, None, hour) for d in days], ignore_index=True)
    v = first[[]].join(facts.groupby("user_id")["num"].sum()).fillna(0)["num"].to_numpy(float)
    cap = CAPS[metric]
    # the pooled quantile over the window's users with a non-zero value, both arms (numpy's method "linear")
    t = float(cap["value"]) if "value" in cap else float(np.quantile(v[v != 0], cap["quantile"], method="linear"))
    x = np.minimum(v, t)
    per_user = first.assign(sum_num=x, sum_den=1.0, sum_num2=x * x, sum_den2=1.0, sum_numden=x, n=1,
                            capped_users=(v > t).astype(int))
    per_user["slice_value"] = per_user["region"] if slice_ == "region" else "all"
    out = per_user.groupby(["bucket", "slice_value"]).agg({c: "sum" for c in [*STAT_COLUMNS, "capped_users"]})
    return out.reset_index().assign(cap_value=t).sort_values(["slice_value", "bucket"]).reset_index(drop=True)


def _stored(wh: Warehouse, metric: str, window: str, slice_: str) -> pd.DataFrame:
    t = pq.read_table(wh.rollup_files(STATS_ROLLUP, [END])).to_pandas()
    rows = t[(t["metric"] == metric) & (t["window_name"] == window) & (t["slice"] == ("all" if slice_ == "bucket"
                                                                                         else slice_))]
    return rows.sort_values(["slice_value", "bucket"]).reset_index(drop=True)


@pytest.mark.parametrize("slice_", ["bucket", "region"])
@pytest.mark.parametrize("window", ["1h", "24h", "7d", "cum"])
@pytest.mark.parametrize("metric", list(CAPS))
def test_capped_rollups_equal_pandas_from_raw_events(capped: Built, metric: str, window: str, slice_: str) -> None:
    want = _reference(capped.warehouse, metric, window, slice_)
    got = _stored(capped.warehouse, metric, window, slice_)
    assert list(got["bucket"]) == list(want["bucket"]) and list(got["slice_value"]) == list(want["slice_value"])
    np.testing.assert_allclose(got[STAT_COLUMNS].to_numpy(float), want[STAT_COLUMNS].to_numpy(float), rtol=1e-12)
    np.testing.assert_allclose(got["cap_value"].to_numpy(float), want["cap_value"].to_numpy(float), rtol=1e-12)
    assert list(got["capped_users"]) == list(want["capped_users"])
    if window != "1h":
        assert want["capped_users"].sum() > 0  # the cap bites
    if window == "cum":
        return
    # the reader returns the same sums
    p = resolve_params(metric, SLICE_COLUMNS, event_date=END, window=window, slice=slice_,
                       params_file=capped.params_file, warehouse=capped.warehouse.root)
    read = ratio_stats(p, metric).sort_values(["slice_value", "bucket"]).reset_index(drop=True)
    np.testing.assert_array_equal(read[STAT_COLUMNS].to_numpy(float), got[STAT_COLUMNS].to_numpy(float))


def test_uncapped_metrics_are_unchanged_by_a_capped_catalogue(built: Built, capped: Built) -> None:
    """Every row of every other metric is identical to the rollup built without caps."""
    before = pq.read_table(built.warehouse.rollup_files(STATS_ROLLUP, [END])).to_pandas()
    after = pq.read_table(capped.warehouse.rollup_files(STATS_ROLLUP, [END])).to_pandas()
    keys = ["experiment_id", "window_name", "metric", "bucket", "slice", "slice_value"]
    others = ~after["metric"].isin(list(CAPS))
    a = after[others].drop(columns=["cap_value", "capped_users"]).sort_values(keys).reset_index(drop=True)
    b = before[~before["metric"].isin(list(CAPS))].sort_values(keys).reset_index(drop=True)
    assert len(a) > 100
    pd.testing.assert_frame_equal(a[b.columns], b)
    assert after[others][["cap_value", "capped_users"]].isna().all().all()


def test_lift_and_ratio_pages_show_the_threshold(capped: Built, tmp_path: Path) -> None:
    """The lift tile's headline (summary.json ``tiles.lift.headline.arms.<arm>.metrics.<id>.cap``) and the
    metric's page carry the threshold; both pages, and the timeline's notes, say "capped at X (99th percentile)"."""
    from expkit.api import run_tile

    args = {"event_date": END, "params_file": capped.params_file, "warehouse": capped.warehouse.root}
    want = _reference(capped.warehouse, "plays_per_user", "24h", "bucket")["cap_value"].iloc[0]
    text = f"capped at {want:,.6g} (99th percentile)"
    lift = run_tile("lift", **args)
    lift.save_sidecar(tmp_path / "lift.json")
    sidecar = json.loads((tmp_path / "lift.json").read_text())
    for arm in sidecar["headline"]["arms"].values():
        cap = arm["metrics"]["plays_per_user"]["cap"]
        assert cap["value"] == pytest.approx(want, rel=1e-12) and cap["quantile"] == 0.99 and cap["text"] == text
        assert arm["metrics"]["items_per_user"]["cap"]["text"] == "capped at 3 (fixed value)"
        assert "cap" not in arm["metrics"]["top3_ctr"]
    assert text in headline_html(lift)
    p = resolve_params("plays_per_user", ("bucket", "region"), event_date=END, params_file=capped.params_file,
                       warehouse=capped.warehouse.root)
    page = ratio_tile(p, ratio_metric(p.config, "plays_per_user"))
    assert page.headline["cap"]["text"] == text and text in page.summary and text in headline_html(page)
    uncapped = run_tile("ctr", **args)
    assert "cap" not in uncapped.headline and "capped at" not in headline_html(uncapped)
    timeline = run_tile("timeline", **args)  # its daily values are capped too: its notes say so
    assert any(text in n for n in timeline.notes) and text in headline_html(timeline)
