"""What a comparison tile reads: which arms, which metrics, which population (shared by the
outcome tiles and the readout)."""

from __future__ import annotations

from dataclasses import replace

from expkit.readers import EVENT_ATTRIBUTES, USER_ATTRIBUTES
from expkit.tiles.base import TileParams


def tuning_n(p: TileParams) -> int:
    """The always-valid tuning ``N*``: ``sequential_tuning_n`` of the parameters file."""
    return p.config.sequential_tuning_n


def lift_metrics(p: TileParams) -> list[str]:
    """The outcome metrics compared, in display order: those the experiment names."""
    return p.config.outcome_metrics


def metrics_for(p: TileParams, slice_: str) -> list[str]:
    """The metrics that can be compared for ``slice_`` (per-user ones have no impression-attribute slices)."""
    cat = p.config.catalogue
    return [m for m in lift_metrics(p) if not (slice_ in EVENT_ATTRIBUTES and not cat[m].event_slices)]


def with_all_arms(p: TileParams) -> TileParams:
    """``p`` reading every arm: the control is needed even when the tile does not show it."""
    return replace(p, buckets=list(p.config.buckets), filters={k: v for k, v in p.filters.items() if k != "bucket"})


def shown_treatments(p: TileParams) -> list[str]:
    """The treatment arms the parameters ``buckets`` and ``filters`` leave to show."""
    arms = [a for a in p.buckets if a in p.filters.get("bucket", p.buckets)]
    return [a for a in arms if a != p.config.control]


def arm_level(p: TileParams) -> TileParams:
    """Parameters of the per-arm headline: the whole (user-attribute filtered) population.

    Impression attributes only narrow a sliced table, since a user spans several of their values.
    """
    return replace(p, slice="bucket", filters={k: v for k, v in p.filters.items() if k not in EVENT_ATTRIBUTES})


ALL_SLICES = ("bucket", "cohort", "region", "surface", "client", "genre", "provider")


USER_SLICES = ("bucket", *USER_ATTRIBUTES)
