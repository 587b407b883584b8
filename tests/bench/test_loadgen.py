"""The load generator against a real server: every kind of client joins, measures and leaves."""

from __future__ import annotations

import os

import pytest

from bench.loadgen import Config, run
from server.app import Server


@pytest.mark.slow
@pytest.mark.parametrize("light", [False, True], ids=["full", "light"])
async def test_a_short_window_measures_bytes_markers_joins_and_cpu(
    server: Server, light: bool
) -> None:
    config = Config(
        server=server.settings.base_url(),
        server_pid=os.getpid(),
        admin_key=server.settings.admin_key,
        room="demo",
        workload="GR-S",
        participants=2,
        spectators=4,
        objects=20,
        moving=1,
        active=[0, 1],
        warmup=1.0,
        duration=4.0,
        spectator_procs=1,
        light=light,
        marker_every=30,
        join_batch=4,
        late_join_every=5.0,
        grace=2.0,
    )
    result = await run(config)
    assert "error" not in result
    assert result["spectators"] == 4
    assert result["bytes_per_s"]["spectator"]["ws_payload"]["min"] > 0
    assert result["summary"]["participant_bytes_per_s"] > 0
    assert result["summary"]["server_cpu_s_per_s"] > 0
    latency = result["latency_ms"]
    assert latency["markers_in_window"] >= 1
    assert latency["expected_receipts"] == latency["markers_in_window"] * 4
    assert latency["missed"] < latency["expected_receipts"]  # markers arrive (time: the bench's)
    arrival = latency["pooled_at_arrival"]
    assert arrival["n"] == latency["pooled"]["n"]
    assert arrival["p50"] <= latency["pooled"]["p50"]  # a frame is read before it is decoded
    assert result["join_ms"]["failures"] == 0 and result["join_ms"]["to_first_state"]["n"] == 1
    errors = result["errors"]
    assert errors["spectator_join_failures"] == 0
    assert errors["spectator_resyncs"] == 0
    assert errors["participant_errors"] == []
    assert errors["spectator_disconnects"] == 0
