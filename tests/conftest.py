"""Shared fixtures: a real server on a loopback port, in the test's trio run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from server.app import Server
from server.config import Settings


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A running server (port picked by the OS) with a demo room called 'demo'."""
    async with running(settings_for(tmp_path)) as instance:
        yield instance


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    """Test settings: loopback, an OS-picked port, short grace periods, no media unless asked."""
    defaults: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "data_dir": tmp_path / "data",
        "tick_hz": 30,
        "grace_seconds": 2.0,
        "slow_drop_seconds": 2.0,
        "media_workers": 0,
    }
    return Settings(**{**defaults, **overrides})


@asynccontextmanager
async def running(settings: Settings, demo_case: str = "demo") -> AsyncIterator[Server]:
    """A server running `settings` (with the room 'demo') for the duration of the block."""
    instance = Server(settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: instance.run(
                task_status=task_status, demo=True, demo_case=demo_case
            )
        )
        yield instance
        nursery.cancel_scope.cancel()


def ws_url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"


def http_url(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"
