"""Guard: fails loudly, naming the attribute, if aiortc's internals move."""

from __future__ import annotations

import asyncio

import aiortc

from media import aiortc_internals
from media.aiortc_internals import AIORTC_VERSION, REQUIRED, missing_internals


def test_aiortc_is_the_pinned_version() -> None:
    assert aiortc.__version__ == AIORTC_VERSION, (
        f"aiortc {aiortc.__version__} installed, media/aiortc_internals.py is written for "
        f"{AIORTC_VERSION}: re-check every attribute in REQUIRED before changing the pin"
    )


def test_every_internal_the_forwarder_uses_exists() -> None:
    missing = asyncio.run(missing_internals())
    assert not missing, "aiortc internals changed; missing: " + ", ".join(missing)


def test_the_guard_names_a_missing_attribute(monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(
        aiortc_internals, "REQUIRED", (*REQUIRED, ("RTCRtpSender", "_no_such_thing"))
    )
    assert asyncio.run(missing_internals()) == ["RTCRtpSender._no_such_thing"]


def test_codec_guard_counts_codec_construction() -> None:
    """Positive control for the worker's 'no codec created' stats (own process)."""
    import subprocess
    import sys

    code = (
        "from media.aiortc_internals import CodecGuard\n"
        "from aiortc import RTCRtpCodecParameters\n"
        "from aiortc.codecs import get_decoder, get_encoder\n"
        "g = CodecGuard(); g.install()\n"
        "vp8 = RTCRtpCodecParameters(mimeType='video/VP8', clockRate=90000, payloadType=96)\n"
        "get_encoder(vp8); get_decoder(vp8)\n"
        "print(g.encoders, g.decoders)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]
