"""Quick checks of the deep dive's pieces without a warehouse: where its page goes, the index
link, and the parameters it refuses before reading anything."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from deepdive_support import NOTEBOOK

from expkit.errors import ExpkitError
from expkit.report.deepdive import DEEPDIVE_PAGE, check_parameters, deepdive_dir, deepdive_notebook
from expkit.report.index import write_index

DAY = dt.date(2026, 11, 14)
SUMMARY = {"date": DAY.isoformat(), "tiles": {}, "code_version": "v0", "generated_at": "2026-11-15T01:00:00Z"}


def test_the_page_lives_in_the_days_folder_and_the_index_links_it_only_when_present(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    day_dir = out / DAY.isoformat()
    assert deepdive_dir(out, DAY) / "index.html" == day_dir / DEEPDIVE_PAGE
    day_dir.mkdir(parents=True)
    assert 'id="deepdive-link"' not in write_index(day_dir, SUMMARY, out).read_text()
    (day_dir / DEEPDIVE_PAGE).parent.mkdir()
    (day_dir / DEEPDIVE_PAGE).write_text("<html></html>")
    html = write_index(day_dir, SUMMARY, out).read_text()
    assert f'id="deepdive-link" href="{DEEPDIVE_PAGE}"' in html
    assert deepdive_notebook() == NOTEBOOK


def test_unknown_parameters_are_refused_before_anything_is_read(tmp_path: Path) -> None:
    for key in ("slice", "event_date", "warehouse"):
        with pytest.raises(ExpkitError, match=f"-p {key}=...: unknown parameter"):
            check_parameters({key: "x"}, warehouse=tmp_path, day=DAY, params_file=tmp_path / "none.yaml")
