"""The load generator's relay layout (bench/relay_bench.py): spectators on a relay, the
relay's CPU measured, markers from the owner's participants reaching them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.loadgen import Config, run
from server.valkey import open_valkey
from tests.cluster.relay_harness import owned_room, running_relay
from tests.cluster.test_relay_limits import relay_settings
from tests.cluster.valkey_process import ValkeyProcess


@pytest.mark.slow
async def test_the_load_generator_puts_spectators_on_relays_and_measures_them(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    async with (
        open_valkey(valkey.url) as v,
        owned_room(v, tmp_path) as (server, _, _, _),
        running_relay(relay_settings(tmp_path, valkey.url, socket_send_buffer=0)) as relay,
    ):
        config = Config(
            server=server.settings.base_url(),
            server_pid=os.getpid(),
            admin_key=server.settings.admin_key,
            room="r1",
            workload="GR-L",
            participants=2,
            spectators=4,
            objects=20,
            moving=1,
            active=[0, 1],
            warmup=1.0,
            duration=4.0,
            spectator_procs=1,
            light=False,
            marker_every=30,
            join_batch=4,
            late_join_every=0.0,
            grace=2.0,
            spectator_servers=[relay.settings.base_url()],
            measured={"relay": os.getpid()},
            spectator_seats=10,
        )
        result = await run(config)
        assert "error" not in result
        assert result["spectators"] == 4
        assert relay.metrics.frames_sent._value.get() > 0  # they were on the relay
        assert server.metrics.frames_sent._value.get() < relay.metrics.frames_sent._value.get()
        assert result["bytes_per_s"]["spectator"]["ws_payload"]["min"] > 0
        assert result["measured_cpu_s_per_s"]["relay"] > 0
        latency = result["latency_ms"]
        assert latency["markers_in_window"] >= 1
        assert latency["missed"] < latency["expected_receipts"]
        assert result["errors"]["spectator_resyncs"] == 0
