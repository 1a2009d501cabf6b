"""The faults the synthetic generator can inject, and the ``NAME@HH:MM/MINUTES:ARM`` spec parser.

An incident is a time window (relative to 00:00 UTC of the last generated day) plus an
effect, on every arm or on the users of one arm. Every effect is applied by the generator to
the events whose time falls inside the window (and whose user is in the arm), with its own
random stream, so the data outside the window is byte-identical to a run without the
incident.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from expkit.errors import ExpkitError

MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class IncidentInfo:
    """What an incident does, when it happens by default, and what it breaks.

    ``default_start_minute`` counts minutes from 00:00 UTC of the last day; a negative value
    starts on an earlier day (``ctr_collapse`` starts at 00:00 of the day before the last).
    ``metrics`` are the health/outcome/validation measures pushed out of SLO or target,
    ``alerts`` the alert rules (docs/alerts.md) expected to fire, and ``params`` the injected magnitudes
    (all copied into ``truth.json``).
    """

    name: str
    default_start_minute: int
    default_minutes: int
    description: str
    tables: tuple[str, ...]
    metrics: tuple[str, ...]
    alerts: tuple[str, ...]
    params: Mapping[str, object] = field(default_factory=dict)

    @property
    def default_window(self) -> str:
        """The default window as ``HH:MM/MINUTES`` on the last day, or a phrase if it starts
        on an earlier day."""
        day, minute = divmod(self.default_start_minute, MINUTES_PER_DAY)
        hhmm = f"{minute // 60:02d}:{minute % 60:02d}/{self.default_minutes}"
        return hhmm if day == 0 else f"{hhmm} from {-day} day(s) before the last day"


def _info(name: str, start: str, minutes: int, description: str, tables: tuple[str, ...],
          metrics: tuple[str, ...], alerts: tuple[str, ...], **params: object) -> IncidentInfo:
    """Registry entry; ``start`` is ``HH:MM`` on the last day, or ``-Nd HH:MM`` N days before."""
    days, _, hhmm = start.rpartition(" ")
    hh, mm = hhmm.split(":")
    offset = int(days.rstrip("d")) * MINUTES_PER_DAY if days else 0
    return IncidentInfo(name, offset + int(hh) * 60 + int(mm), minutes, description, tables,
                        metrics, alerts, MappingProxyType(params))


_ALL = ("requests", "impressions", "clicks", "saves", "plays")

INCIDENTS: Mapping[str, IncidentInfo] = MappingProxyType({
    i.name: i
    for i in (
        _info("latency_spike", "14:00", 30,
              "All request latencies x8: p95 far above 100 ms; nothing else changes.",
              ("requests",), ("latency_p95", "latency_p95_warm", "latency_p95_cold"),
              ("latency_p95_high",), latency_factor=8.0),
        _info("error_burst", "19:30", 20,
              "3% of requests fail (k_returned = 0); coverage dips but stays >= 95%.",
              ("requests", "impressions"), ("error_rate", "topk_fill"),
              ("error_rate_high", "topk_fill_low"), error_rate=0.03),
        _info("cache_failure", "18:00", 30,
              "Cache hit rate falls to 20%; cold latency p95 stays below 100 ms.",
              ("requests",), ("cache_hit_rate",), ("cache_hit_low",), cache_hit_rate=0.2),
        _info("coverage_drop", "15:00", 30,
              "12% of ok requests return no items: coverage < 95%, Top-K fill drops.",
              ("requests", "impressions"), ("coverage", "topk_fill"),
              ("coverage_low", "topk_fill_low"), empty_share=0.12),
        _info("stale_partition", "12:00", 60,
              "Impressions in the window land 45-90 min late (ingest delay >> 15 min).",
              ("impressions",), ("freshness",), ("data_stale",), table="impressions",
              delay_min_minutes=45, delay_max_minutes=90),
        _info("late_data", "20:00", 120,
              "25% of sessions in the window land 2-6 h after the day ended, in part-late files.",
              _ALL, ("freshness", "late_data"), ("data_stale",), late_share=0.25,
              ingest_after_day_end_min_minutes=120, ingest_after_day_end_max_minutes=360),
        _info("traffic_imbalance", "00:00", 1440,
              "30% of non-control users' sessions are lost: allocation off plan, SRM p < 0.001.",
              _ALL, ("allocation", "srm"), ("traffic_imbalance",), dropped_user_share=0.3),
        _info("ctr_collapse", "-1d 00:00", 2880,
              "Only 10% of clicks are logged, every arm: CTR < 0.5% for the last two days.",
              ("clicks",), ("ctr",), ("ctr_low",), click_keep_share=0.1),
        _info("orphan_clicks", "00:00", 1440,
              "3% extra clicks whose (request_id, item_id) matches no impression.",
              ("clicks",), ("join_integrity",), (), orphan_rate=0.03),
        _info("duplicate_events", "00:00", 1440,
              "2% of clicks and impressions written twice with the same ids.",
              ("clicks", "impressions"), ("duplicates",), (), duplicate_rate=0.02),
    )
})


@dataclass(frozen=True)
class Incident:
    """One injected incident: ``minutes`` long, starting ``start_minute_of_day`` minutes after
    00:00 UTC of the last generated day (negative: on an earlier day); ``arm``: only the
    requests (and their events) of users in that arm, ``None`` for every arm."""

    name: str
    start_minute_of_day: int
    minutes: int
    arm: str | None = None

    @property
    def info(self) -> IncidentInfo:
        """The registry entry of this incident."""
        return INCIDENTS[self.name]

    def window_ms(self, last_day_start_ms: int) -> tuple[int, int]:
        """The half-open window [start, end) in epoch milliseconds."""
        start = last_day_start_ms + self.start_minute_of_day * 60_000
        return start, start + self.minutes * 60_000


# The arm comes last, after a colon; it may itself contain colons (bucket names may).
_SPEC = re.compile(r"^(?P<name>[a-z_]+)(?:@(?P<hh>\d{1,2}):(?P<mm>\d{2})(?:/(?P<minutes>\d+))?)?"
                   r"(?::(?P<arm>\S.*))?$")


def parse_incident(spec: str | Incident) -> Incident:
    """Parse ``NAME[@HH:MM[/MINUTES]][:ARM]`` (time on the last day, UTC).

    ``NAME`` alone uses the incident's default window (see ``INCIDENTS``); ``@HH:MM`` without
    minutes keeps the default duration. A window given explicitly must end by 24:00.
    ``:ARM`` limits the incident to the users of that arm (checked against the experiment's
    arms by the generator).

    >>> parse_incident("latency_spike@14:00/30")
    Incident(name='latency_spike', start_minute_of_day=840, minutes=30, arm=None)
    >>> parse_incident("ctr_collapse")
    Incident(name='ctr_collapse', start_minute_of_day=-1440, minutes=2880, arm=None)
    >>> parse_incident("error_burst@08:00/600:treatment").arm
    'treatment'
    """
    if isinstance(spec, Incident):
        if spec.name not in INCIDENTS:
            raise ExpkitError(f"unknown incident {spec.name!r}; valid names: "
                              + ", ".join(INCIDENTS))
        if spec.minutes < 1:
            raise ExpkitError(f"malformed incident {spec!r}: minutes must be at least 1")
        return spec
    text = str(spec).strip()
    m = _SPEC.match(text)
    if not m:
        raise ExpkitError(f"malformed incident spec {spec!r}: write NAME or NAME@HH:MM/MINUTES, "
                          "optionally followed by :ARM, e.g. latency_spike@14:00/30 or "
                          "error_burst@08:00/600:treatment")
    name = m["name"]
    if name not in INCIDENTS:
        raise ExpkitError(f"unknown incident {name!r} in {spec!r}; valid names: "
                          + ", ".join(INCIDENTS))
    info = INCIDENTS[name]
    arm = m["arm"]
    if m["hh"] is None:
        return Incident(name, info.default_start_minute, info.default_minutes, arm)
    hh, mm = int(m["hh"]), int(m["mm"])
    minutes = int(m["minutes"]) if m["minutes"] is not None else info.default_minutes
    if hh > 23 or mm > 59:
        raise ExpkitError(f"malformed incident spec {spec!r}: time {hh:02d}:{mm:02d} is not a "
                          "valid HH:MM (00:00-23:59)")
    if minutes < 1:
        raise ExpkitError(f"malformed incident spec {spec!r}: MINUTES must be at least 1")
    start = hh * 60 + mm
    if start + minutes > MINUTES_PER_DAY:
        raise ExpkitError(f"incident {spec!r} runs past the end of the last day "
                          f"({hh:02d}:{mm:02d} + {minutes} min > 24:00); shorten MINUTES "
                          "or start earlier")
    return Incident(name, start, minutes, arm)
