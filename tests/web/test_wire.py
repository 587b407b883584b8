"""The browser's codec agrees with the Python reference byte for byte: a tricky state
encoded by `netcode.codec`, decoded in the page and re-encoded in canonical form, gives
the same bytes and the same CRC-32 as `netcode.codec.checksum`."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from netcode.codec import canonical, checksum, encode
from netcode.state import HIDDEN
from tests.web.conftest import WebServer

pytestmark = pytest.mark.slow

STATE = {
    "e": {
        1: ["monitor", {"hr": 92, "temp": 37.0, "spo2": 95.5, "alarms": ["hr_high"], "off": None}],
        300: ["answer_key", {"summary": HIDDEN, "score": HIDDEN}],
        70000: [
            "patient",
            {
                "name": "Zoë 🫀",
                "long": "x" * 300,
                "flag": True,
                "no": False,
                "nested": {
                    "b": {"1": 2, "a": [1, -1, -33, -129, -40000, -(2**31) - 1]},
                    "a": 2**40,
                    "c": 1e300,
                    "d": -2.5,
                },
            },
        ],
        5: [
            "blob",
            {
                "data": b"\x00\x01\xff" * 100,
                "many": list(range(20)),
                "wide": {f"k{i}": i for i in range(20)},
            },
        ],
    },
    "l": {"events": [{"t": 1.5, "text": "a"}, {"t": 2, "text": "b"}], "chat": []},
    "p": {12: [1000, -2000, 30, 3221225471], 3: [0, 0, 0, 0]},
}


def test_canonical_bytes_and_checksum_match_python(web_server: WebServer, open_page: Any) -> None:
    page = open_page(web_server.page_url("spectator"))
    wire = base64.b64encode(encode(STATE)).decode()
    got = page.evaluate(
        """async (b64) => {
            const { decode } = await import('/js/wire.js');
            const { canonicalBytes, checksum } = await import('/js/checksum.js');
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const state = decode(bytes.buffer);
            const out = canonicalBytes(state);
            return [btoa(String.fromCharCode(...out)), checksum(state)];
        }""",
        wire,
    )
    assert base64.b64decode(got[0]) == encode(canonical(STATE))
    assert got[1] == checksum(STATE)
