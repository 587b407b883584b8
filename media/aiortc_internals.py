"""Every use of aiortc (and aioice) internals, in one place, for aiortc==1.16.0.

The forwarder needs RTP packets before aiortc's jitter buffer and decoder, and
needs to put RTP packets on a subscriber's transport without aiortc's encoder.
aiortc has no public API for either, so this module taps the private hooks of
:class:`RTCRtpReceiver` and :class:`RTCRtpSender` listed in :data:`REQUIRED`.
:func:`missing_internals` checks them all; the worker refuses to start and the
guard test fails, naming the attribute, if an aiortc upgrade changes them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import aioice.ice
import aioice.stun
import aiortc
import aiortc.codecs
import aiortc.codecs.base
import aiortc.rtcrtpreceiver
import aiortc.rtp
import aiortc.sdp
from aiortc import RTCPeerConnection, RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpSender
from aiortc import clock as aiortc_clock
from aiortc.codecs import depayload, is_rtx
from aiortc.codecs.base import Decoder, Encoder
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
    unwrap_rtx,
    wrap_rtx,
)
from aiortc.sdp import SessionDescription, candidate_from_sdp

# Non-public aiortc names the rest of media/ uses, imported only through here.
__all__ = [
    "ArrivalCounter",
    "CodecGuard",
    "ReceiverTap",
    "RtpPacket",
    "SenderTap",
    "SessionDescription",
    "candidate_from_sdp",
    "count_media_as_consent",
    "depayload",
    "ended_reason",
    "install_consent_freshness",
    "missing_internals",
    "use_host_addresses",
]

log = logging.getLogger("media.ice")

AIORTC_VERSION = "1.16.0"

#: Retransmission history kept per subscriber sender (about 3 s at 3 Mbit/s).
HISTORY_PACKETS = 1024

_R = "_RTCRtpReceiver__"
_S = "_RTCRtpSender__"

#: (owner, attribute) pairs this module relies on; instances are checked live.
REQUIRED: tuple[tuple[str, str], ...] = (
    ("RTCRtpReceiver", "_handle_rtp_packet"),
    ("RTCRtpReceiver", "_handle_rtcp_packet"),
    ("RTCRtpReceiver", "_send_rtcp"),
    ("RTCRtpReceiver", "_send_rtcp_pli"),
    ("RTCRtpReceiver", "_send_rtcp_nack"),
    ("RTCRtpReceiver", "_enabled"),
    ("RTCRtpReceiver", _R + "codecs"),
    ("RTCRtpReceiver", _R + "rtx_ssrc"),
    ("RTCRtpReceiver", _R + "remote_streams"),
    ("RTCRtpReceiver", _R + "nack_generator"),
    ("RTCRtpReceiver", _R + "rtcp_ssrc"),
    ("RTCRtpSender", "_run_rtp"),
    ("RTCRtpSender", "_handle_rtcp_packet"),
    ("RTCRtpSender", "_ssrc"),
    ("RTCRtpSender", "_rtx_ssrc"),
    ("RTCRtpSender", _S + "rtp_started"),
    ("RTCRtpSender", _S + "rtp_exited"),
    ("RTCRtpSender", _S + "rtp_header_extensions_map"),
    ("RTCRtpSender", _S + "mid"),
    ("RTCRtpSender", _S + "rtx_payload_type"),
    ("RTCRtpSender", _S + "ntp_timestamp"),
    ("RTCRtpSender", _S + "rtp_timestamp"),
    ("RTCRtpSender", _S + "octet_count"),
    ("RTCRtpSender", _S + "packet_count"),
    ("RTCDtlsTransport", "_send_rtp"),
    ("RTCDtlsTransport", "_handle_rtp_data"),
    ("RTCDtlsTransport", "_handle_rtcp_data"),
    ("aiortc.codecs.base", "Encoder"),
    ("aiortc.codecs.base", "Decoder"),
    ("aioice.ice", "get_host_addresses"),
    ("aioice.ice.Connection", "query_consent"),
    ("aioice.ice.Connection", "build_request"),
    ("aioice.ice.Connection", "close"),
    ("aioice.ice.Connection", "data_received"),
    ("aioice.ice.Connection", "remote_password"),
    ("aioice.ice.Connection", "_nominated"),
    ("aioice.ice.Connection", "_query_consent_task"),
    ("aioice.stun", "TransactionError"),
    ("RTCIceTransport", "_connection"),
    ("aiortc.sdp", "SessionDescription"),
    ("aiortc.sdp", "candidate_from_sdp"),
    ("aiortc.codecs", "depayload"),
    ("aiortc.rtp", "RtpPacket"),
    ("aiortc.rtp", "wrap_rtx"),
    ("aiortc.rtp", "unwrap_rtx"),
    ("aiortc.rtcrtpreceiver", "NackGenerator"),
    ("aiortc.rtcrtpreceiver", "StreamStatistics"),
)


async def missing_internals() -> list[str]:
    """Names of required internals absent from the installed aiortc, empty if fine."""
    missing = []
    if aiortc.__version__ != AIORTC_VERSION:
        missing.append(f"aiortc.__version__ == {AIORTC_VERSION!r} (found {aiortc.__version__})")
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video")
        ice = transceiver.sender.transport.transport
        owners: dict[str, object] = {
            "RTCRtpReceiver": transceiver.receiver,
            "RTCRtpSender": transceiver.sender,
            "RTCDtlsTransport": transceiver.sender.transport,
            "RTCIceTransport": ice,
            "aioice.ice.Connection": getattr(ice, "_connection", None),
            "aioice.stun": aioice.stun,
            "aiortc.codecs.base": aiortc.codecs.base,
            "aiortc.codecs": aiortc.codecs,
            "aiortc.sdp": aiortc.sdp,
            "aiortc.rtp": aiortc.rtp,
            "aiortc.rtcrtpreceiver": aiortc.rtcrtpreceiver,
            "aioice.ice": aioice.ice,
        }
        for owner, name in REQUIRED:
            if not hasattr(owners[owner], name):
                missing.append(f"{owner}.{name}")
    finally:
        await pc.close()
    return missing


def use_host_addresses(addresses: list[str] | None) -> None:
    """Make ICE gather host candidates on exactly these addresses (e.g. 127.0.0.1).

    aioice skips 127.0.0.1 when it lists interfaces; offline tests and
    single-host deployments need loopback, so the lookup is replaced.
    """
    if addresses is None:
        return
    fixed = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


def sockets_per_pc(ice_servers: list[dict[str, Any]]) -> int:
    """UDP sockets one pc opens when it gathers: one per ICE host address (aioice's
    list, as `use_host_addresses` may have fixed it), one more with a TURN server."""
    hosts = len(aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True))
    urls = " ".join(
        s["urls"] if isinstance(s["urls"], str) else " ".join(s["urls"]) for s in ice_servers
    )
    return max(1, hosts) + int(any(url.startswith("turn") for url in urls.split()))


#: Consent checks a STUN transaction retransmits (RTO 0.5 s, doubling: a reply up to
#: 7.5 s late still counts).
CONSENT_RETRANSMISSIONS = 3
_consent_expired: weakref.WeakSet[aioice.ice.Connection] = weakref.WeakSet()
#: When authenticated SRTP or SRTCP last came in on a connection (loop time).
_media_seen: weakref.WeakKeyDictionary[aioice.ice.Connection, float] = weakref.WeakKeyDictionary()


def install_consent_freshness(interval_s: float = 5.0, timeout_s: float = 30.0) -> None:
    """Replace aioice's consent freshness (RFC 7675) with one that survives a busy peer.

    aioice sends each check once, counts a reply later than 500 ms as none, and after
    six (about 30 s) closes the whole ICE connection, silently. A browser tab encoding
    stereo video on a loaded machine answers the checks on its little-used audio pc
    seconds late, then not at all, while its voice keeps arriving: the worker ended
    that pc and the voice was gone for every subscriber. Here a check is retransmitted
    like any STUN transaction (a late reply counts), media from the peer that passed
    SRTP authentication counts as consent too (only the peer holding this session's
    keys can send it), consent expires only after ``timeout_s`` with neither, and an
    expiry is logged and remembered (``ended_reason``).
    """

    async def query_consent(connection: aioice.ice.Connection) -> None:
        loop = asyncio.get_running_loop()
        answered = loop.time()
        checks: set[asyncio.Task[None]] = set()

        async def check(pair: Any) -> None:
            nonlocal answered
            assert connection.remote_password is not None
            try:
                await pair.protocol.request(
                    connection.build_request(pair, nominate=False),
                    pair.remote_addr,
                    integrity_key=connection.remote_password.encode("utf8"),
                    retransmissions=CONSENT_RETRANSMISSIONS,
                )
            except aioice.stun.TransactionError:
                return
            answered = loop.time()

        try:
            while True:
                await asyncio.sleep(interval_s * random.uniform(0.8, 1.2))
                for pair in list(connection._nominated.values()):
                    task = asyncio.ensure_future(check(pair))
                    checks.add(task)
                    task.add_done_callback(checks.discard)
                answered = max(answered, _media_seen.get(connection, answered))
                if loop.time() - answered > timeout_s:
                    log.warning(
                        "ICE consent expired: no reply to a consent check for %.0f s", timeout_s
                    )
                    _consent_expired.add(connection)
                    connection._query_consent_task = None
                    await connection.close()
                    return
        finally:
            for task in checks:
                task.cancel()

    aioice.ice.Connection.query_consent = query_consent  # type: ignore[method-assign,assignment]


def _ice_connection(pc: RTCPeerConnection) -> aioice.ice.Connection | None:
    transceivers = pc.getTransceivers()
    if not transceivers:
        return None
    connection: aioice.ice.Connection = transceivers[0].receiver.transport.transport._connection
    return connection


def ended_reason(pc: RTCPeerConnection) -> str:
    """Why a pc the worker did not close has ended, in words for a log and a client."""
    connection = _ice_connection(pc)
    if connection is not None and connection in _consent_expired:
        return "consent_expired"
    if pc.iceConnectionState == "failed":
        return "ice_failed"
    return "closed_by_peer"


def count_media_as_consent(pc: RTCPeerConnection) -> None:
    """Note every packet that passes SRTP on this pc (see ``install_consent_freshness``)."""
    connection = _ice_connection(pc)
    if connection is None:
        return
    dtls = pc.getTransceivers()[0].receiver.transport
    for name in ("_handle_rtp_data", "_handle_rtcp_data"):
        handle = getattr(dtls, name)

        async def seen(data: bytes, *args: Any, handle: Any = handle, **kwargs: Any) -> None:
            _media_seen[connection] = asyncio.get_running_loop().time()
            await handle(data, *args, **kwargs)

        setattr(dtls, name, seen)


class ArrivalCounter:
    """Datagrams reaching a pc's ICE connection (RTP, RTCP, DTLS; not STUN).

    Counted where aioice hands them to the DTLS transport's queue, so they are seen
    even if nothing after that point takes them: the watchdog compares this with what
    reaches the forwarder.
    """

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.count = 0
        connection = _ice_connection(pc)
        if connection is None:
            return
        deliver = connection.data_received

        def data_received(data: bytes, component: int) -> None:
            self.count += 1
            deliver(data, component)

        connection.data_received = data_received  # type: ignore[method-assign]


class CodecGuard:
    """Counts every aiortc encoder and decoder constructed in this process.

    The forwarder must never create one; the worker reports the counts in its
    stats so tests (and operators) can check. Every concrete codec class of
    ``aiortc.codecs`` is wrapped, whatever path would construct it.
    """

    def __init__(self) -> None:
        self.encoders = 0
        self.decoders = 0

    def install(self) -> None:
        for base, counter in ((Encoder, "encoders"), (Decoder, "decoders")):
            for cls in _subclasses(base):
                if "__init__" in vars(cls):
                    cls.__init__ = self._counting(cls.__init__, counter)  # type: ignore[misc]

    def _counting(self, init: Callable[..., None], counter: str) -> Callable[..., None]:
        def counted_init(codec: object, *args: Any, **kwargs: Any) -> None:
            setattr(self, counter, getattr(self, counter) + 1)
            init(codec, *args, **kwargs)

        return counted_init


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    sub: type
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


OnRtp = Callable[[RtpPacket, RTCRtpCodecParameters, int], Awaitable[None]]
OnSenderReport = Callable[[int, int, int], None]


class ReceiverTap:
    """Takes a publisher's RTP before aiortc's jitter buffer, so nothing is decoded.

    Kept from aiortc: receiver reports (its statistics are fed), RTX unwrapping
    and NACK generation towards the publisher.
    """

    def __init__(
        self, receiver: RTCRtpReceiver, on_rtp: OnRtp, on_sender_report: OnSenderReport
    ) -> None:
        self.receiver = receiver
        self._on_rtp = on_rtp
        self._on_sender_report = on_sender_report
        handle_rtcp = receiver._handle_rtcp_packet

        async def handle_rtcp_packet(packet: Any) -> None:
            if isinstance(packet, RtcpSrPacket):
                info = packet.sender_info
                self._on_sender_report(packet.ssrc, info.ntp_timestamp, info.rtp_timestamp)
            await handle_rtcp(packet)

        receiver._handle_rtp_packet = self._handle_rtp_packet  # type: ignore[method-assign]
        receiver._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]

    def _get(self, name: str) -> Any:
        return getattr(self.receiver, _R + name)

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        receiver = self.receiver
        if not receiver._enabled:
            return
        codec: RTCRtpCodecParameters | None = self._get("codecs").get(packet.payload_type)
        if codec is None:
            return
        streams: dict[int, StreamStatistics] = self._get("remote_streams")
        if packet.ssrc not in streams:
            streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        streams[packet.ssrc].add(packet)
        if is_rtx(codec):
            original_ssrc = self._get("rtx_ssrc").get(packet.ssrc)
            apt = codec.parameters.get("apt")
            codecs = self._get("codecs")
            if original_ssrc is None or len(packet.payload) < 2 or not isinstance(apt, int):
                return
            if apt not in codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
            codec = codecs[apt]
        nack: NackGenerator | None = self._get("nack_generator")
        if nack is not None and nack.add(packet):
            await receiver._send_rtcp_nack(packet.ssrc, sorted(nack.missing))
        await self._on_rtp(packet, codec, arrival_time_ms)

    async def request_keyframe(self, media_ssrc: int) -> None:
        await self.receiver._send_rtcp_pli(media_ssrc)

    async def send_remb(self, bitrate: int, ssrcs: list[int]) -> None:
        rtcp_ssrc = self._get("rtcp_ssrc")
        if rtcp_ssrc is None:
            return
        packet = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)
        )
        await self.receiver._send_rtcp(packet)


class SenderTap:
    """Puts forwarded RTP on a subscriber's sender in place of aiortc's encoder loop.

    aiortc still sends sender reports and handles receiver reports; this class
    keeps the counters those reports read consistent with what it forwards,
    owns the retransmission history and answers NACKs (with RTX if negotiated),
    and hands keyframe requests and bandwidth estimates to the forwarder.
    """

    def __init__(
        self,
        sender: RTCRtpSender,
        on_keyframe_request: Callable[[], None],
        on_remb: Callable[[int], None],
    ) -> None:
        self.sender = sender
        self.codec: RTCRtpCodecParameters | None = None
        self.ready = asyncio.Event()
        self.nacked = 0
        self.retransmitted = 0
        self._history: collections.OrderedDict[int, RtpPacket] = collections.OrderedDict()
        self._rtx_sequence_number = 0
        self._on_keyframe_request = on_keyframe_request
        self._on_remb = on_remb
        handle_rtcp = sender._handle_rtcp_packet

        async def handle_rtcp_packet(packet: Any) -> None:
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                self.nacked += len(packet.lost)
                for seq in packet.lost:
                    await self._retransmit(seq)
                return
            if isinstance(packet, RtcpPsfbPacket):
                if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                    self._on_keyframe_request()
                    return
                if packet.fmt == RTCP_PSFB_APP:
                    try:
                        bitrate, ssrcs = unpack_remb_fci(packet.fci)
                    except ValueError:
                        return
                    if sender._ssrc in ssrcs:
                        self._on_remb(bitrate)
                    return
            await handle_rtcp(packet)

        sender._run_rtp = self._run_rtp  # type: ignore[method-assign]
        sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]

    @property
    def ssrc(self) -> int:
        return int(self.sender._ssrc)

    @property
    def sending(self) -> bool:
        """Negotiated and connected: a forwarded packet goes out."""
        return self.ready.is_set() and self.sender.transport.state == "connected"

    async def _run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        """Stands in for aiortc's encode loop: records the codec, then idles."""
        self.codec = codec
        getattr(self.sender, _S + "rtp_started").set()
        self.ready.set()
        try:
            await asyncio.Future()
        except asyncio.CancelledError:
            pass
        finally:
            self.ready.clear()
            getattr(self.sender, _S + "rtp_exited").set()

    async def send(self, packet: RtpPacket, ntp_timestamp: int | None) -> bool:
        """Send one rewritten packet; False if the transport is not connected."""
        sender = self.sender
        packet.extensions.mid = getattr(sender, _S + "mid")
        packet.extensions.abs_send_time = (aiortc_clock.current_ntp_time() >> 14) & 0xFFFFFF
        self._history[packet.sequence_number] = packet
        if len(self._history) > HISTORY_PACKETS:
            self._history.popitem(last=False)
        try:
            await sender.transport._send_rtp(
                packet.serialize(getattr(sender, _S + "rtp_header_extensions_map"))
            )
        except ConnectionError:
            return False
        setattr(
            sender,
            _S + "ntp_timestamp",
            ntp_timestamp if ntp_timestamp is not None else aiortc_clock.current_ntp_time(),
        )
        setattr(sender, _S + "rtp_timestamp", packet.timestamp)
        setattr(
            sender, _S + "octet_count", getattr(sender, _S + "octet_count") + len(packet.payload)
        )
        setattr(sender, _S + "packet_count", getattr(sender, _S + "packet_count") + 1)
        return True

    async def _retransmit(self, sequence_number: int) -> None:
        packet = self._history.get(sequence_number)
        if packet is None:
            return
        sender = self.sender
        rtx_payload_type = getattr(sender, _S + "rtx_payload_type")
        if rtx_payload_type is not None:
            packet = wrap_rtx(
                packet,
                payload_type=rtx_payload_type,
                sequence_number=self._rtx_sequence_number,
                ssrc=sender._rtx_ssrc,
            )
            self._rtx_sequence_number = (self._rtx_sequence_number + 1) & 0xFFFF
        try:
            await sender.transport._send_rtp(
                packet.serialize(getattr(sender, _S + "rtp_header_extensions_map"))
            )
        except ConnectionError:
            return
        self.retransmitted += 1
