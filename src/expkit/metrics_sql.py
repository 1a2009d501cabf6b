"""The SQL of the metric catalogue: per-user facts and ratio statistics for every metric.

Two templates carry the catalogue's metrics, in marked regions ``/*<slot>:begin*/ ...
/*<slot>:end*/`` of their text that this module writes from a :class:`~expkit.catalogue.Catalogue`:

* ``user_facts`` gains, per declarative metric, a numerator and a denominator column of per-user
  sums (``m_<id>_num``, ``m_<id>_den``): one aggregation per event table the metrics read, with
  the event-attribute slices (surface, genre, provider) as grouping sets for ``impressions``;
* ``ratio_stats`` sums them (and the built-in facts) over the window's days per user, and writes
  one row set per ratio metric of the catalogue: n and the five sums of the delta method, plus the
  nine sums of the CUPED adjustment (:data:`PRE_SUMS`) from each user's pre-period values; a metric
  with a ``cap`` has each user's window numerator capped at the window's pooled threshold first
  (regions ``metric_caps``, ``metric_cap_join``; bound ``$cap_<k>``; empty without caps), and its
  rows add ``cap_value`` and ``capped_users`` (docs/metrics.md, "Capping per-user values");
* ``user_pre`` sums each user's numerator and denominator of every ratio metric over the CUPED
  pre-period (``pre_<id>_num``, ``pre_<id>_den``), which ``ratio_stats`` joins per user.

Identifiers come only from :mod:`expkit.schema` (checked by the catalogue) and from metric ids
(lower-case letters, digits and ``_``, checked by the catalogue); ``where`` values are bound
parameters (``$mp_<n>``), never SQL text. The shipped template files hold the regions written
for the built-in metrics alone (:func:`builtin_catalogue`), so that they run as they are; a test
keeps them equal to this module's output.

>>> q = ratio_stats_query(builtin_catalogue())
>>> q.template.sql == TEMPLATES["ratio_stats"].sql, q.values
(True, {})
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from expkit.catalogue import BUILTINS, Aggregate, Catalogue, Metric, Range, parse_catalogue
from expkit.errors import ConfigError
from expkit.rollup_schema import USER_FACTS_SCHEMA
from expkit.templates import TEMPLATES, Template

_REGION = r"/\*{slot}:begin\*/.*?/\*{slot}:end\*/"
_ALIAS = {"impressions": "i", "requests": "r", "plays": "p"}
_FLAG_SQL = {"clicked": "(coalesce(act.clicks, 0) > 0)", "saved": "(coalesce(act.saves, 0) > 0)"}
_EVENT_SLICES = ("surface", "genre", "provider")


@dataclass(frozen=True)
class MetricQuery:
    """A template with the catalogue's metrics written in, and the values of its ``where`` parameters.

    Attributes:
        template: the template (its header, params and filters unchanged; its SQL generated).
        values: bound values of the generated parameters (``mp_<n>``), added to every binding.
    """

    template: Template
    values: dict[str, Any] = field(default_factory=dict)

    def bind(self, **values: Any) -> dict[str, Any]:
        """The template's :meth:`~expkit.templates.Template.bind` plus the generated values."""
        return {**self.template.bind(**values), **self.values}

    def render(
        self, filters: Mapping[str, str | Sequence[str]] | None = None, **values: Any
    ) -> tuple[str, dict[str, Any]]:
        """The template's :meth:`~expkit.templates.Template.render` plus the generated values."""
        sql, binding = self.template.render(filters, **values)
        return sql, {**binding, **self.values}


def fill(sql: str, regions: Mapping[str, str]) -> str:
    """``sql`` with the text of each marked region replaced (markers kept)."""
    for slot, text in regions.items():
        pattern = re.compile(_REGION.format(slot=re.escape(slot)), re.S)
        if not pattern.search(sql):
            raise ValueError(f"template has no region {slot!r}")
        body = f"/*{slot}:begin*/{text}/*{slot}:end*/"
        sql = pattern.sub(lambda _m, b=body: b, sql)  # type: ignore[misc]
    return sql


def builtin_catalogue() -> Catalogue:
    """A catalogue of the built-in ratio metrics alone (what the shipped templates hold)."""
    return parse_catalogue({"metrics": {
        k: {"title": k, "builtin": k, "direction": "increase", "format": "number"}
        for k, b in BUILTINS.items() if b.kind == "ratio"
    }}, "<built-in metrics>")


def fact_columns(metric_id: str) -> tuple[str, str]:
    """The per-user fact columns of a declarative metric: numerator, denominator."""
    return f"m_{metric_id}_num", f"m_{metric_id}_den"


def user_facts_schema(catalogue: Catalogue) -> pa.Schema:
    """The schema of ``user_day`` / ``user_last_hour`` with the catalogue's metric columns."""
    fields = list(USER_FACTS_SCHEMA)
    for mid in catalogue.declarative_ids:
        m = catalogue[mid]
        num, den = fact_columns(mid)
        fields.append(pa.field(num, _side(m, "numerator").arrow_type()))
        if isinstance(m.denominator, Aggregate):
            fields.append(pa.field(den, m.denominator.arrow_type()))
    return pa.schema(fields)


PRE_SUMS = (
    ("sum_pre_num", "{pn}"), ("sum_pre_den", "{pd}"), ("sum_pre_num2", "{pn} * {pn}"),
    ("sum_pre_den2", "{pd} * {pd}"), ("sum_pre_numden", "{pn} * {pd}"), ("sum_num_pre_num", "{n} * {pn}"),
    ("sum_num_pre_den", "{n} * {pd}"), ("sum_den_pre_num", "{d} * {pn}"), ("sum_den_pre_den", "{d} * {pd}"),
)
"""The CUPED sums of ``ratio_stats`` (:data:`expkit.stats.cuped.RATIO_COVARIATE_KEYS`, in that order):
output column and the per-user product summed (``n``/``d``: the window's numerator and denominator,
``pn``/``pd``: the pre-period's)."""


def pre_columns(metric_id: str) -> tuple[str, str]:
    """The pre-period columns of a ratio metric in ``user_pre``: numerator, denominator."""
    return f"pre_{metric_id}_num", f"pre_{metric_id}_den"


def user_pre_schema(catalogue: Catalogue) -> pa.Schema:
    """The schema of the ``user_pre`` rollup: ``user_id`` and two pre-period columns per ratio metric."""
    fields = [pa.field("user_id", pa.int64())]
    for mid in catalogue.ratio_ids:
        fields += [pa.field(c, pa.float64()) for c in pre_columns(mid)]
    return pa.schema(fields)


def _num_den(catalogue: Catalogue, mid: str) -> tuple[str, str]:
    """The per-user columns (of ``ratio_stats``' expanded rows) of a ratio metric's numerator and denominator."""
    m = catalogue[mid]
    if m.builtin:
        return BUILTINS[m.builtin].numerator, BUILTINS[m.builtin].denominator
    num, den = fact_columns(mid)
    return num, "users" if m.per_user_mean else den


def _side(m: Metric, name: str) -> Aggregate:
    agg = getattr(m, name)
    assert isinstance(agg, Aggregate)
    return agg


class _Params:
    """Bound parameters of the generated conditions, numbered in order."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        name = f"mp_{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def _condition(agg: Aggregate, params: _Params) -> str | None:
    alias = _ALIAS[agg.table]
    parts: list[str] = []
    for column, values in agg.conditions():
        ref = _FLAG_SQL.get(column, f"{alias}.{column}") if agg.table == "impressions" else f"{alias}.{column}"
        if isinstance(values, Range):
            parts.extend(f"{ref} {op} {params.add(bound)}" for op, bound in values.bounds())
        elif len(values) == 1:
            parts.append(f"{ref} = {params.add(values[0])}")
        else:
            parts.append(f"{ref} IN ({', '.join(params.add(v) for v in values)})")
    return " AND ".join(parts) or None


def _aggregate_sql(agg: Aggregate, params: _Params) -> str:
    alias = _ALIAS[agg.table]
    cond = _condition(agg, params)
    if agg.function == "count":
        return f"sum(CASE WHEN {cond} THEN 1 ELSE 0 END)" if cond else "count(*)"
    column = f"{alias}.{agg.column}"
    value = f"CASE WHEN {cond} THEN {column} END" if cond else column
    if agg.function == "sum":
        return f"sum({value})"
    return f"count(DISTINCT {value})"


def _sql_type(t: pa.DataType) -> str:
    """The SQL type of a per-user fact column of :func:`user_facts_schema` (64-bit counts or doubles)."""
    return "DOUBLE" if pa.types.is_floating(t) else "BIGINT"


def _zero(t: pa.DataType) -> str:
    return f"CAST(0 AS {_sql_type(t)})"


def _metric_facts(catalogue: Catalogue) -> list[pa.Field]:
    """The per-user fact columns of the catalogue's declarative metrics, in the order of :func:`user_facts_schema`."""
    return list(user_facts_schema(catalogue))[len(USER_FACTS_SCHEMA):]


def _fact_sums(catalogue: Catalogue, typed: bool = False) -> str:
    """The region summing every declarative metric's per-user fact columns (``m_<id>_num``, and
    ``m_<id>_den`` when it is an aggregate), in the order of :func:`user_facts_schema`; ``typed``
    casts each sum back to the column's type, so that running totals keep the schema of ``user_day``."""
    sums = []
    for f in _metric_facts(catalogue):
        total = f"CAST(sum({f.name}) AS {_sql_type(f.type)})" if typed else f"sum({f.name})"
        sums.append(f", {total} AS {f.name}")
    return " ".join(sums)


def _user_facts_regions(catalogue: Catalogue) -> tuple[dict[str, str], dict[str, Any]]:
    params = _Params()
    # table -> [(column, aggregate)]
    per_table: dict[str, list[tuple[str, Aggregate]]] = {}
    for mid in catalogue.declarative_ids:
        m = catalogue[mid]
        num, den = fact_columns(mid)
        per_table.setdefault(_side(m, "numerator").table, []).append((num, _side(m, "numerator")))
        if isinstance(m.denominator, Aggregate):
            per_table.setdefault(m.denominator.table, []).append((den, m.denominator))
    ctes, all_cols, all_joins, slice_cols, slice_joins = [], [], [], [], []
    window = "NOT {a}.shadow AND {a}.timestamp_ms >= $start_ms AND {a}.timestamp_ms < $end_ms"
    for table in ("impressions", "requests", "plays"):
        cols = per_table.get(table, [])
        if not cols:
            continue
        a, cte = _ALIAS[table], f"m_{table}"
        aggs = ",\n        ".join(f"{_aggregate_sql(agg, params)} AS {col}" for col, agg in cols)
        if table == "impressions":
            flags = any(c in _FLAG_SQL for _, agg in cols for c in agg.where)
            join = "\n    LEFT JOIN act ON act.request_id = i.request_id AND act.item_id = i.item_id" if flags else ""
            which = " ".join(f"WHEN grouping(i.{s}) = 0 THEN {v}" for s, v in
                             [(s, f"'{s}'") for s in _EVENT_SLICES])
            value = " ".join(f"WHEN grouping(i.{s}) = 0 THEN i.{s}" for s in _EVENT_SLICES)
            sets = ", ".join(["(i.experiment_id, i.user_id)",
                              *(f"(i.experiment_id, i.user_id, i.{s})" for s in _EVENT_SLICES)])
            ctes.append(
                f",\n{cte} AS (\n    SELECT\n        i.experiment_id, i.user_id,\n"
                f"        CASE {which} ELSE 'all' END AS slice,\n"
                f"        CASE {value} ELSE 'all' END AS slice_value,\n        {aggs}\n"
                f"    FROM impressions AS i{join}\n    WHERE {window.format(a=a)}\n"
                f"    GROUP BY GROUPING SETS ({sets})\n)"
            )
            all_joins.append(f"LEFT JOIN {cte} ON {cte}.experiment_id = u.experiment_id "
                             f"AND {cte}.user_id = u.user_id AND {cte}.slice = 'all'")
            slice_joins.append(
                f"LEFT JOIN {cte} ON {cte}.experiment_id IS NOT DISTINCT FROM s.experiment_id "
                f"AND {cte}.user_id IS NOT DISTINCT FROM s.user_id AND {cte}.slice = s.slice "
                f"AND {cte}.slice_value IS NOT DISTINCT FROM s.slice_value")
        else:
            keys = f"{a}.experiment_id, {a}.user_id" if table == "requests" else f"{a}.user_id"
            ctes.append(f",\n{cte} AS (\n    SELECT {keys},\n        {aggs}\n    FROM {table} AS {a}\n"
                        f"    WHERE {window.format(a=a)}\n    GROUP BY {keys}\n)")
            on = f"{cte}.user_id = u.user_id"
            if table == "requests":
                on = f"{cte}.experiment_id = u.experiment_id AND {on}"
            all_joins.append(f"LEFT JOIN {cte} ON {on}")
    schema = user_facts_schema(catalogue)
    for table in ("impressions", "requests", "plays"):
        for col, _ in per_table.get(table, []):
            zero = _zero(schema.field(col).type)
            all_cols.append(f", coalesce(m_{table}.{col}, {zero}) AS {col}")
            slice_cols.append(f", coalesce(m_{table}.{col}, {zero}) AS {col}" if table == "impressions"
                              else f", {zero} AS {col}")
    # the columns in one order on both sides of the UNION ALL: the schema's
    order = [f.name for f in schema][len(USER_FACTS_SCHEMA):]
    all_cols.sort(key=lambda c: order.index(c.rsplit(" AS ", 1)[1]))
    slice_cols.sort(key=lambda c: order.index(c.rsplit(" AS ", 1)[1]))
    regions = {
        "metric_ctes": "".join(ctes),
        "metric_all_columns": " ".join(all_cols),
        "metric_all_joins": "\n".join(all_joins),
        "metric_slice_columns": " ".join(slice_cols),
        "metric_slice_joins": "\n".join(slice_joins),
    }
    return regions, params.values


def _ratio_stats_regions(catalogue: Catalogue) -> tuple[dict[str, str], dict[str, float]]:
    ids = catalogue.ratio_ids
    if not ids:
        raise ConfigError(f"{catalogue.source}: the catalogue defines no ratio metric; add one")
    sums, columns, all_values, slice_values = [], [], [], []
    for mid in catalogue.declarative_ids:
        m = catalogue[mid]
        facts = fact_columns(mid) if isinstance(m.denominator, Aggregate) else fact_columns(mid)[:1]
        for c in facts:
            sums.append(f", sum({c}) AS {c}")
            columns.append(f", f.{c}")
            all_values.append(f", CAST(p.{c} AS DOUBLE) AS {c}")
            slice_values.append(f", CAST({c} AS DOUBLE)")
    for mid in ids:  # each user's pre-period values (0 without history)
        for c in pre_columns(mid):
            columns.append(f", coalesce(pp.{c}, 0.0) AS {c}")
            all_values.append(f", p.{c}")
            slice_values.append(f", {c}")
    moments, values, pick, thresholds = [], [], [], []
    cap_values: dict[str, float] = {}
    for k, mid in enumerate(ids):
        m = catalogue[mid]
        num, den = _num_den(catalogue, mid)
        if m.cap is not None:  # the user's window numerator, capped (docs/metrics.md, "Capping per-user values")
            raw, cap = num, f"cap_{k}"
            level = m.cap.quantile if m.cap.quantile is not None else m.cap.value
            assert level is not None  # a Cap has one of the two
            cap_values[cap] = level
            # over the users with a non-zero value, as Statsig: a sparse metric keeps a threshold above 0
            thresholds.append(f"quantile_cont(CASE WHEN {raw} <> 0 THEN CAST({raw} AS DOUBLE) END, ${cap})"
                              if m.cap.quantile is not None
                              else f"CAST(${cap} AS DOUBLE)")
            num = f"(CASE WHEN {raw} > {cap} THEN {cap} ELSE {raw} END)"
            moments.append(f",\n        max({cap}) AS {cap}, count(CASE WHEN {raw} > {cap} THEN 1 END) AS capped_{k}")
        moments.append(f",\n        sum({num}) AS num_{k}, sum({den}) AS den_{k}, sum({num} * {num}) AS num2_{k}, "
                       f"sum({den} * {den}) AS den2_{k}, sum({num} * {den}) AS numden_{k}")
        pn, pd_ = pre_columns(mid)
        moments.append(",\n        " + ", ".join(
            f"sum({expr.format(n=num, d=den, pn=pn, pd=pd_)}) AS {out[4:]}_{k}" for out, expr in PRE_SUMS))
        values.append(f"('{mid}', {k}, {'FALSE' if m.event_slices else 'TRUE'})")
    outs = [("sum_num", "num"), ("sum_den", "den"), ("sum_num2", "num2"), ("sum_den2", "den2"),
            ("sum_numden", "numden"), *((out, out[4:]) for out, _ in PRE_SUMS)]
    for out, prefix in outs:
        arms = " ".join(f"WHEN {k} THEN s.{prefix}_{k}" for k in range(len(ids)))
        pick.append(f",\n    CASE m.k {arms} END AS {out}")
    capped = [k for k, mid in enumerate(ids) if catalogue[mid].cap is not None]
    caps = join = ""
    if capped:
        for out, prefix in (("cap_value", "cap"), ("capped_users", "capped")):
            arms = " ".join(f"WHEN {k} THEN s.{prefix}_{k}" for k in capped)
            pick.append(f",\n    CASE m.k {arms} END AS {out}")
        columns_sql = ", ".join(f"{t} AS cap_{k}" for t, k in zip(thresholds, capped, strict=True))
        caps = (f"caps AS (\n    SELECT experiment_id AS cap_experiment_id, {columns_sql}\n    FROM facts\n"
                "    WHERE slice = 'all'\n    GROUP BY experiment_id\n),\n")
        join = "\n    LEFT JOIN caps ON caps.cap_experiment_id = expanded.experiment_id"
    return {
        "metric_sums": " ".join(sums),
        "metric_columns": " ".join(columns),
        "metric_all_values": " ".join(all_values),
        "metric_slice_values": " ".join(slice_values),
        "metric_moments": "".join(moments),
        "metric_values": ", ".join(values),
        "metric_pick": "".join(pick),
        "metric_caps": caps,
        "metric_cap_join": join,
    }, cap_values


def _user_pre_regions(catalogue: Catalogue) -> dict[str, str]:
    cols = []
    for mid in catalogue.ratio_ids:
        for value, c in zip(_num_den(catalogue, mid), pre_columns(mid), strict=True):
            cols.append(f", CAST({value} AS DOUBLE) AS {c}")
    return {"metric_sums": _fact_sums(catalogue), "pre_columns": " ".join(cols)}


_cache: dict[tuple[str, str], MetricQuery] = {}


def user_facts_query(catalogue: Catalogue) -> MetricQuery:
    """Template ``user_facts`` with a numerator and denominator column per declarative metric."""
    key = ("user_facts", catalogue.stats_digest() + catalogue.facts_digest())
    if key not in _cache:
        base = TEMPLATES["user_facts"]
        regions, values = _user_facts_regions(catalogue)
        _cache[key] = MetricQuery(replace(base, sql=fill(base.sql, regions)), values)
    return _cache[key]


def ratio_stats_query(catalogue: Catalogue) -> MetricQuery:
    """Template ``ratio_stats`` with one row set per ratio metric of the catalogue."""
    key = ("ratio_stats", catalogue.stats_digest() + catalogue.facts_digest())
    if key not in _cache:
        base = TEMPLATES["ratio_stats"]
        regions, values = _ratio_stats_regions(catalogue)
        _cache[key] = MetricQuery(replace(base, sql=fill(base.sql, regions)), dict(values))
    return _cache[key]


def user_pre_query(catalogue: Catalogue) -> MetricQuery:
    """Template ``user_pre`` with the pre-period columns of every ratio metric of the catalogue."""
    key = ("user_pre", catalogue.stats_digest() + catalogue.facts_digest())
    if key not in _cache:
        base = TEMPLATES["user_pre"]
        _cache[key] = MetricQuery(replace(base, sql=fill(base.sql, _user_pre_regions(catalogue))))
    return _cache[key]


EXPOSURE_SUMS = ("sum_num", "sum_den", "sum_nn", "sum_nd", "sum_dn", "sum_dd")
"""The per-metric columns of ``exposure_stats`` beside ``n`` (docs/statistics.md, "Novelty and primacy")."""


def exposure_ids(catalogue: Catalogue) -> list[str]:
    """The ratio metrics of ``catalogue`` that are per-day sums of ``user_day`` (every one but Recall@K,
    which is taken over a window's per (user, item) facts): those ``exposure_stats`` carries."""
    facts = set(user_facts_schema(catalogue).names) | {"users"}
    return [m for m in catalogue.ratio_ids if set(_num_den(catalogue, m)) <= facts]


def _exposure_stats_regions(catalogue: Catalogue) -> dict[str, str]:
    ids = exposure_ids(catalogue)
    if not ids:
        raise ConfigError(f"{catalogue.source}: the catalogue defines no per-day ratio metric; add one")
    moments, values, pick = [], [], []
    for k, mid in enumerate(ids):
        n, d = _num_den(catalogue, mid)
        moments.append(f",\n        sum(a.{n}) AS num_{k}, sum(a.{d}) AS den_{k}, sum(a.{n} * b.{n}) AS nn_{k}, "
                       f"sum(a.{n} * b.{d}) AS nd_{k}, sum(a.{d} * b.{n}) AS dn_{k}, sum(a.{d} * b.{d}) AS dd_{k}")
        values.append(f"('{mid}', {k})")
    for out in EXPOSURE_SUMS:
        arms = " ".join(f"WHEN {k} THEN p.{out[4:]}_{k}" for k in range(len(ids)))
        pick.append(f",\n    CASE m.k {arms} END AS {out}")
    return {"metric_moments": "".join(moments), "metric_values": ", ".join(values), "metric_pick": "".join(pick)}


def exposure_ages_schema(catalogue: Catalogue) -> pa.Schema:
    """The schema of ``exposure_ages`` (template ``exposure_ages``) with the catalogue's metric columns."""
    values = ["impressions", "clicks", "saves", "sessions", "depth", "users",
              *(f.name for f in _metric_facts(catalogue))]
    return pa.schema([("experiment_id", pa.string()), ("user_id", pa.int64()), ("bucket", pa.string()),
                      ("age", pa.int64()), *((v, pa.float64()) for v in values)])


def exposure_ages_query(catalogue: Catalogue) -> MetricQuery:
    """Template ``exposure_ages`` with every declarative metric's fact columns (as doubles)."""
    key = ("exposure_ages", catalogue.stats_digest() + catalogue.facts_digest())
    if key not in _cache:
        extra = _metric_facts(catalogue)
        base = TEMPLATES["exposure_ages"]
        regions = {"metric_columns": " ".join(f", CAST(f.{f.name} AS DOUBLE) AS {f.name}" for f in extra),
                   "metric_names": "".join(f", {f.name}" for f in extra), "metric_sums": _fact_sums(catalogue)}
        _cache[key] = MetricQuery(replace(base, sql=fill(base.sql, regions)))
    return _cache[key]


def exposure_stats_query(catalogue: Catalogue) -> MetricQuery:
    """Template ``exposure_stats`` with one row set per per-day ratio metric of the catalogue (:func:`exposure_ids`)."""
    key = ("exposure_stats", catalogue.stats_digest() + catalogue.facts_digest())
    if key not in _cache:
        base = TEMPLATES["exposure_stats"]
        _cache[key] = MetricQuery(replace(base, sql=fill(base.sql, _exposure_stats_regions(catalogue))))
    return _cache[key]


def user_cum_query(catalogue: Catalogue) -> MetricQuery:
    """Template ``user_cum`` with the running totals of every declarative metric's fact columns."""
    key = ("user_cum", catalogue.stats_digest() + catalogue.facts_digest())
    if key not in _cache:
        base = TEMPLATES["user_cum"]
        _cache[key] = MetricQuery(replace(base, sql=fill(base.sql, {"metric_sums": _fact_sums(catalogue, typed=True)})))
    return _cache[key]


def query(name: str, catalogue: Catalogue) -> MetricQuery:
    """Template ``name`` for ``catalogue``: generated for ``user_facts``, ``ratio_stats``,
    ``user_pre``, ``user_cum``, ``exposure_ages`` and ``exposure_stats``, as shipped for the others."""
    if name == "user_cum":
        return user_cum_query(catalogue)
    if name == "exposure_stats":
        return exposure_stats_query(catalogue)
    if name == "exposure_ages":
        return exposure_ages_query(catalogue)
    if name == "user_pre":
        return user_pre_query(catalogue)
    if name == "user_facts":
        return user_facts_query(catalogue)
    if name == "ratio_stats":
        return ratio_stats_query(catalogue)
    return MetricQuery(TEMPLATES[name])
