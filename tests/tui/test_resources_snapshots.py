"""Resource use on screen, from fixed samples: the panes with `t`, the minute with `T`.
Update with `pytest tests/tui/test_resources_snapshots.py --snapshot-update` and look."""

from __future__ import annotations

from collections.abc import Callable

from test_snapshots import app, keys

Compare = Callable[..., bool]


def test_resource_use_in_both_panes(snap_compare: Compare) -> None:
    assert snap_compare(app(), terminal_size=(120, 40), run_before=keys("t"))


def test_resource_use_80x24(snap_compare: Compare) -> None:
    assert snap_compare(app(), terminal_size=(80, 24), run_before=keys("t"))


def test_resource_history_of_prod(snap_compare: Compare) -> None:
    assert snap_compare(app(), terminal_size=(120, 40), run_before=keys("2", "T"))
