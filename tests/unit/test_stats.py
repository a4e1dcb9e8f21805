"""Resource-use samples as the docker CLI computes them, and the minute a service keeps."""

from __future__ import annotations

import pytest

from stack_tui.core import stats

RAW = {
    "cpu_stats": {
        "cpu_usage": {"total_usage": 3_000_000_000},
        "system_cpu_usage": 120_000_000_000,
        "online_cpus": 2,
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 2_900_000_000},
        "system_cpu_usage": 118_000_000_000,
    },
    "memory_stats": {"usage": 50 * 2**20, "limit": 2**31, "stats": {"inactive_file": 10 * 2**20}},
}


def test_cpu_is_a_share_of_one_core_and_memory_leaves_out_the_page_cache() -> None:
    sample = stats.parse(RAW, at=1.0)
    assert sample.cpu == pytest.approx(10.0)  # 0.1 s of CPU over 2 s of 2 cores' time, x2
    assert sample.memory == 40 * 2**20 and sample.memory_limit == 2**31
    assert stats.describe(sample) == ("10.0 %", "40.0 MiB")


def test_a_streams_first_sample_has_no_cpu_yet() -> None:
    first = stats.parse({**RAW, "precpu_stats": {}})
    assert first.cpu is None and stats.describe(first)[0] == "…"


def test_an_engine_that_reports_nothing_is_said_to() -> None:
    with pytest.raises(stats.Unavailable, match="no CPU or memory use"):
        stats.parse({"read": "0001-01-01T00:00:00Z", "cpu_stats": {}, "memory_stats": {}})


def test_a_service_keeps_the_last_minute() -> None:
    history = stats.History()
    for second in range(stats.HISTORY + 30):
        history.add(stats.Sample(float(second), float(second), second, None))
    assert len(history.cpu()) == stats.HISTORY and history.cpu()[0] == 30.0
    assert history.last is not None and history.last.at == stats.HISTORY + 29
