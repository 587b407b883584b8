"""Shared helpers: decode frames, feed them to mirrors, compare a mirror with the server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck

from netcode.codec import checksum, decode_server_message
from netcode.mirror import Mirror
from netcode.publisher import Publisher
from netcode.views import View

SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
"""Health checks a loaded 2-core machine trips without any fault in the code under test."""


def decode(frame: bytes) -> dict[str, Any]:
    decoded = decode_server_message(frame)
    assert isinstance(decoded, dict)
    assert decoded["t"] == "s"
    return decoded


def frame_kind(frame: dict[str, Any]) -> str:
    """snapshot | delta | resume (a resume delta, with `r` and full poses)."""
    if "full" in frame:
        return "snapshot"
    if "b" in frame:
        return "delta"
    assert "r" in frame and frame.get("pf") is True, frame
    return "resume"


def assert_mirror_matches(mirror: Mirror, publisher: Publisher, view: View) -> None:
    """The mirror holds exactly the server's state for `view`: structure and checksum."""
    server = publisher.view_state(view)
    assert mirror.tick == publisher.tick
    assert mirror.op == publisher.op_head
    assert mirror.entities == server["e"]
    assert mirror.logs == server["l"]
    assert mirror.poses == server["p"]
    assert checksum(mirror.view_state()) == checksum(server)


def strings_in(obj: Any) -> Iterator[str]:
    """Every string (keys included) and decoded bytes inside a decoded frame."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, bytes):
            yield item.decode("utf-8", "replace")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
