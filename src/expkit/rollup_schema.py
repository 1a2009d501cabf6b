"""Arrow schemas of rollup tables that readers may need when a table has no files yet."""

from __future__ import annotations

import pyarrow as pa

USER_FACTS_SCHEMA = pa.schema(
    [
        ("experiment_id", pa.string()),
        ("bucket", pa.string()),
        ("user_id", pa.int64()),
        ("slice", pa.string()),
        ("slice_value", pa.string()),
        ("cohort", pa.string()),
        ("region", pa.string()),
        ("client", pa.string()),
        ("first_ms", pa.int64()),
        ("impressions", pa.int64()),
        ("clicks", pa.int64()),
        ("saves", pa.int64()),
        ("sessions", pa.int64()),
        ("depth", pa.int64()),
    ]
)
"""``user_day`` and ``user_last_hour`` (template ``user_facts``)."""

USER_ITEMS_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("first_play_ms", pa.int64()),
        ("first_topk_shown_ms", pa.int64()),
    ]
)
"""``user_items`` and ``user_items_last_hour`` (template ``user_items``): the facts of Recall@K."""

PLAYED_ITEMS_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("shown_before", pa.bool_()),
        ("last_shown_ms", pa.int64()),
        ("last_played_ms", pa.int64()),
    ]
)
"""``played_items`` and ``played_items_last_hour`` (template ``played_items``): Recall@K's pairs of a window."""

USER_FIRST_SCHEMA = pa.schema(
    [
        ("experiment_id", pa.string()),
        ("user_id", pa.int64()),
        ("bucket", pa.string()),
        ("first_ms", pa.int64()),
    ]
)
"""``user_first`` (template ``user_first``): the users first exposed on a day, with their arm then."""
