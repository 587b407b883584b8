"""A room's media: members' peer connections, published tracks, subscriptions.

Signalling is the rtc message set documented in ``docs/media.md``. Every
message is validated completely before anything is created, so a bad message
gets a :class:`SignalError` and leaves the room exactly as it was.

Publishing and subscribing use separate peer connections: the client offers
to publish, the worker offers to subscribe. New tracks are announced with a
``tracks`` event; a client adds them to its subscription with another
``subscribe`` on the same pc, which the worker answers with a re-offer, so
the only renegotiation is always worker-offered and only ever adds m-lines.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from aiortc import (
    InvalidAccessError,
    InvalidStateError,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from media import errors
from media.aiortc_internals import (
    ArrivalCounter,
    ReceiverTap,
    SenderTap,
    SessionDescription,
    candidate_from_sdp,
    count_media_as_consent,
    ended_reason,
)
from media.errors import SignalError
from media.forwarder import TrackOutput, TrackSource
from media.limits import PeerLedger, Slot
from media.recorder import TrackRecorder
from media.roles import ROLES, may_mute_others, may_publish
from media.watchdog import Verdict, Watchdog

log = logging.getLogger(__name__)

MAX_TRACKS_PER_PUBLISH = 4
MAX_TRACKS_PER_SUBSCRIBE = 32
MAX_SDP_BYTES = 32 * 1024
NEGOTIATION_TIMEOUT_S = 10.0
LAYOUTS = frozenset({"mono", "side-by-side"})
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CODECS = {"audio": ("audio/opus",), "video": ("video/vp8", "video/rtx")}

Emit = Callable[[str | None, dict[str, Any]], None]


@dataclass(eq=False)
class Peer:
    """One RTCPeerConnection of a member: publishing or subscribing."""

    id: str
    direction: str
    pc: RTCPeerConnection
    sources: list[TrackSource] = field(default_factory=list)
    outputs: list[TrackOutput] = field(default_factory=list)
    arrivals: ArrivalCounter | None = None
    """Datagrams reaching a publishing pc, for the watchdog."""
    slot: Slot | None = None
    """Its place in the worker's pc counts, given back when it closes."""
    offered_at: float | None = None
    """When the worker's offer still waiting for an answer was made (loop time)."""
    settled_at: float | None = None
    """When its negotiation completed, until it first connects (loop time)."""
    connected: bool = False


@dataclass
class Member:
    id: str
    role: str
    peers: dict[str, Peer] = field(default_factory=dict)


def _require(message: dict[str, Any], key: str, kind: type, pc: str | None = None) -> Any:
    value = message.get(key)
    if not isinstance(value, kind):
        raise SignalError(errors.BAD_MESSAGE, f"'{key}' must be a {kind.__name__}", pc)
    return value


def _pc_id(message: dict[str, Any]) -> str:
    pc: str = _require(message, "pc", str)
    if not _ID.match(pc):
        raise SignalError(errors.BAD_MESSAGE, "'pc' must be 1-64 of [A-Za-z0-9_.:-]")
    return pc


def _parse_sdp(sdp: Any, pc: str) -> SessionDescription:
    if not isinstance(sdp, str) or not sdp.strip():
        raise SignalError(errors.BAD_SDP, "'sdp' must be a non-empty string", pc)
    if len(sdp) > MAX_SDP_BYTES:
        raise SignalError(errors.TOO_LARGE, f"SDP longer than {MAX_SDP_BYTES} bytes", pc)
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # whatever the parser trips on, it is the client's SDP
        raise SignalError(errors.BAD_SDP, "the SDP does not parse", pc) from exc
    if not parsed.media:
        raise SignalError(errors.BAD_SDP, "SDP has no media sections", pc)
    return parsed


def _now() -> float:
    """The loop's clock, which the watchdog's `now` is read from too."""
    return asyncio.get_running_loop().time()


def _prefer_forwardable_codecs(transceiver: RTCRtpTransceiver, kind: str) -> None:
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in _CODECS[kind]])


class Room:
    def __init__(
        self, room_id: str, ice_servers: list[dict[str, Any]], emit: Emit, ledger: PeerLedger
    ) -> None:
        self.id = room_id
        self._ledger = ledger
        self.members: dict[str, Member] = {}
        self.tracks: dict[str, TrackSource] = {}
        self._ice_servers = ice_servers
        self._emit = emit
        self._lock = asyncio.Lock()
        self._recording: tuple[Path, float] | None = None
        self._recorders: dict[str, TrackRecorder] = {}
        self._output_keys = itertools.count()
        self._watchdog = Watchdog()
        self.faults: Counter[str] = Counter()
        """Media that stopped on its own, by what happened (the worker's stats)."""

    # -- signalling ---------------------------------------------------------

    async def signal(
        self, member_id: str, role: str, message: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if role not in ROLES:
            raise SignalError(errors.BAD_MESSAGE, f"unknown role {role!r}")
        op = message.get("op")
        handler = self._HANDLERS.get(op) if isinstance(op, str) else None
        if handler is None:
            raise SignalError(errors.BAD_MESSAGE, f"unknown rtc op {op!r}")
        async with self._lock:
            member = self.members.get(member_id)
            if member is None:
                member = self.members[member_id] = Member(member_id, role)
            member.role = role
            return await handler(self, member, message)

    async def _publish(self, member: Member, message: dict[str, Any]) -> list[dict[str, Any]]:
        pc_id = self._new_pc_id(member, message)
        offer = _parse_sdp(message.get("sdp"), pc_id)
        announced = _require(message, "tracks", list, pc_id)
        if not 1 <= len(announced) <= MAX_TRACKS_PER_PUBLISH:
            raise SignalError(
                errors.BAD_MESSAGE, f"publish 1 to {MAX_TRACKS_PER_PUBLISH} tracks", pc_id
            )
        by_mid = {m.rtp.muxId: m for m in offer.media}
        tracks: dict[str, tuple[str, str]] = {}
        for track in announced:
            if not isinstance(track, dict):
                raise SignalError(errors.BAD_MESSAGE, "each track must be a map", pc_id)
            mid, kind = track.get("mid"), track.get("kind")
            layout = track.get("layout", "mono")
            if kind not in ("audio", "video") or layout not in LAYOUTS:
                raise SignalError(
                    errors.BAD_MESSAGE,
                    "track kind must be audio|video, layout mono|side-by-side",
                    pc_id,
                )
            if not may_publish(member.role, kind):
                raise SignalError(
                    errors.FORBIDDEN, f"a {member.role} may not publish {kind}", pc_id
                )
            media = by_mid.get(mid) if isinstance(mid, str) else None
            if media is None or media.kind != kind:
                raise SignalError(
                    errors.UNKNOWN_TRACK, f"no {kind} section with mid {mid!r} in the offer", pc_id
                )
            if not any(c.mimeType.lower() == _CODECS[kind][0] for c in media.rtp.codecs):
                raise SignalError(
                    errors.BAD_SDP, f"{kind} mid {mid!r} does not offer {_CODECS[kind][0]}", pc_id
                )
            tracks[str(mid)] = (kind, layout)
        for media in offer.media:
            if media.rtp.muxId not in tracks and media.direction in ("sendrecv", "sendonly"):
                raise SignalError(
                    errors.UNKNOWN_TRACK,
                    f"mid {media.rtp.muxId!r} sends but is not announced",
                    pc_id,
                )

        slot = self._ledger.admit(self.id, member.id, "publish", pc_id)
        pc = self._new_pc()
        peer = Peer(pc_id, "publish", pc, slot=slot)
        try:
            await self._negotiate(
                pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer")), pc_id
            )
            for transceiver in pc.getTransceivers():
                if transceiver.mid in tracks:
                    kind, layout = tracks[transceiver.mid]
                    _prefer_forwardable_codecs(transceiver, kind)
                    source = TrackSource(
                        f"{member.id}:{pc_id}:{transceiver.mid}",
                        member.id,
                        kind,
                        layout,
                        self._on_speaking,
                    )
                    source.tap = ReceiverTap(
                        transceiver.receiver, source.on_rtp, source.on_sender_report
                    )
                    peer.sources.append(source)
            await self._negotiate(pc.setLocalDescription(await pc.createAnswer()), pc_id)
        except BaseException:
            self._ledger.release(slot)
            await pc.close()
            for source in peer.sources:
                source.close()
            raise
        peer.settled_at = _now()
        peer.arrivals = ArrivalCounter(pc)
        count_media_as_consent(pc)
        member.peers[pc_id] = peer
        self._watch(member, peer)
        added = []
        for source in peer.sources:
            self.tracks[source.id] = source
            self._start_recorder(source)
            added.append(source.describe())
        self._emit(None, {"op": "tracks", "added": added, "removed": []})
        return [{"op": "answer", "pc": pc_id, "sdp": pc.localDescription.sdp, "tracks": added}]

    async def _subscribe(self, member: Member, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Offer tracks on a new pc, or add tracks to an existing subscription pc."""
        pc_id = _pc_id(message)
        peer = member.peers.get(pc_id)
        if peer is None:
            pc_id = self._new_pc_id(member, message)
        elif peer.direction != "subscribe" or peer.pc.signalingState != "stable":
            raise SignalError(
                errors.BAD_MESSAGE, f"pc {pc_id!r} is not a settled subscription", pc_id
            )
        have = {o.source.id for o in peer.outputs if o.attached} if peer is not None else set()
        wanted = message.get("tracks")
        if wanted is None:
            sources = [
                s for s in self.tracks.values() if s.member_id != member.id and s.id not in have
            ]
        else:
            if not isinstance(wanted, list) or not all(isinstance(t, str) for t in wanted):
                raise SignalError(errors.BAD_MESSAGE, "'tracks' must be a list of track ids", pc_id)
            unknown = [t for t in wanted if t not in self.tracks]
            if unknown:
                raise SignalError(errors.UNKNOWN_TRACK, f"no such track: {unknown[0]}", pc_id)
            sources = [self.tracks[t] for t in dict.fromkeys(wanted) if t not in have]
        if not sources:
            raise SignalError(errors.UNKNOWN_TRACK, "no new tracks to subscribe to", pc_id)
        # m-lines are never taken out of a pc, so those of tracks gone count too.
        lines = len(peer.outputs) if peer is not None else 0
        if lines + len(sources) > MAX_TRACKS_PER_SUBSCRIBE:
            raise SignalError(
                errors.LIMIT, f"at most {MAX_TRACKS_PER_SUBSCRIBE} tracks in one pc", pc_id
            )

        created = peer is None
        if peer is None:
            slot = self._ledger.admit(self.id, member.id, "subscribe", pc_id)
            peer = Peer(pc_id, "subscribe", self._new_pc(), slot=slot)
        pc = peer.pc
        added = []
        for source in sources:
            transceiver = pc.addTransceiver(source.kind, direction="sendonly")
            _prefer_forwardable_codecs(transceiver, source.kind)
            key = next(self._output_keys)
            tap = SenderTap(
                transceiver.sender,
                on_keyframe_request=source.request_keyframe,
                on_remb=partial(source.on_remb, key),
            )
            added.append(TrackOutput(source, tap, key, transceiver))
        try:
            await self._negotiate(pc.setLocalDescription(await pc.createOffer()), pc_id)
        except BaseException:
            # A new pc is discarded; an existing one cannot take back its
            # transceivers, so it is closed rather than left half-renegotiated.
            if created:
                if peer.slot is not None:
                    self._ledger.release(peer.slot)
                await pc.close()
            else:
                await self._close_peer(member, peer)
            raise
        peer.offered_at = _now()
        peer.outputs += added
        if created:
            count_media_as_consent(pc)
            member.peers[pc_id] = peer
            self._watch(member, peer)
        for output in added:
            output.source.outputs[output.key] = output
        tracks = [
            dict(o.source.describe(), mid=o.transceiver.mid) for o in peer.outputs if o.attached
        ]
        return [{"op": "offer", "pc": pc_id, "sdp": pc.localDescription.sdp, "tracks": tracks}]

    async def _answer(self, member: Member, message: dict[str, Any]) -> list[dict[str, Any]]:
        peer = self._peer(member, message)
        _parse_sdp(message.get("sdp"), peer.id)
        if peer.direction != "subscribe" or peer.pc.signalingState != "have-local-offer":
            raise SignalError(errors.BAD_MESSAGE, "no offer is waiting for an answer", peer.id)
        await self._negotiate(
            peer.pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "answer")), peer.id
        )
        peer.offered_at = None
        if not peer.connected:
            peer.settled_at = _now()
        return [{"op": "ack", "pc": peer.id, "of": "answer"}]

    async def _candidate(self, member: Member, message: dict[str, Any]) -> list[dict[str, Any]]:
        peer = self._peer(member, message)
        raw = message.get("candidate")
        if raw is None:
            return [{"op": "ack", "pc": peer.id, "of": "candidate"}]
        if not isinstance(raw, dict) or not isinstance(raw.get("candidate"), str):
            raise SignalError(
                errors.BAD_MESSAGE, "'candidate' must be a map with 'candidate'", peer.id
            )
        mid, index = raw.get("sdpMid"), raw.get("sdpMLineIndex")
        if not isinstance(mid, str | None) or not (
            index is None or (isinstance(index, int) and not isinstance(index, bool))
        ):
            raise SignalError(
                errors.BAD_MESSAGE, "'sdpMid' must be a string, 'sdpMLineIndex' an int", peer.id
            )
        line = raw["candidate"].removeprefix("candidate:")
        try:
            candidate = candidate_from_sdp(line)
        except Exception as exc:
            raise SignalError(errors.BAD_SDP, "the candidate does not parse", peer.id) from exc
        candidate.sdpMid = mid
        candidate.sdpMLineIndex = index
        await self._negotiate(peer.pc.addIceCandidate(candidate), peer.id)
        return [{"op": "ack", "pc": peer.id, "of": "candidate"}]

    async def _close_peer_op(self, member: Member, message: dict[str, Any]) -> list[dict[str, Any]]:
        peer = self._peer(member, message)
        await self._close_peer(member, peer)
        return [{"op": "ack", "pc": peer.id, "of": message["op"]}]

    async def _mute(self, member: Member, message: dict[str, Any]) -> list[dict[str, Any]]:
        track_id = _require(message, "track", str)
        muted = _require(message, "muted", bool)
        source = self.tracks.get(track_id)
        if source is None:
            raise SignalError(errors.UNKNOWN_TRACK, f"no such track: {track_id}")
        if source.member_id != member.id and not may_mute_others(member.role):
            raise SignalError(errors.FORBIDDEN, f"a {member.role} may only mute their own tracks")
        if source.muted != muted:
            source.set_muted(muted)
            self._emit(None, {"op": "muted", "track": track_id, "muted": muted, "by": member.id})
        return [{"op": "ack", "of": "mute", "track": track_id}]

    _HANDLERS: dict[
        str, Callable[[Room, Member, dict[str, Any]], Awaitable[list[dict[str, Any]]]]
    ] = {
        "publish": _publish,
        "subscribe": _subscribe,
        "answer": _answer,
        "candidate": _candidate,
        "unpublish": _close_peer_op,
        "unsubscribe": _close_peer_op,
        "mute": _mute,
    }

    # -- helpers ------------------------------------------------------------

    def _new_pc(self) -> RTCPeerConnection:
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in self._ice_servers
        ]
        return RTCPeerConnection(RTCConfiguration(iceServers=servers))

    def _new_pc_id(self, member: Member, message: dict[str, Any]) -> str:
        pc_id = _pc_id(message)
        if pc_id in member.peers:
            raise SignalError(errors.BAD_MESSAGE, f"pc {pc_id!r} already exists", pc_id)
        return pc_id

    def _peer(self, member: Member, message: dict[str, Any]) -> Peer:
        pc_id = _pc_id(message)
        peer = member.peers.get(pc_id)
        if peer is None:
            raise SignalError(errors.UNKNOWN_PC, f"no pc {pc_id!r}", pc_id)
        expected = {"unpublish": "publish", "unsubscribe": "subscribe"}.get(message["op"])
        if expected is not None and peer.direction != expected:
            raise SignalError(errors.BAD_MESSAGE, f"pc {pc_id!r} is a {peer.direction} pc", pc_id)
        return peer

    async def _negotiate(self, step: Awaitable[Any], pc_id: str) -> Any:
        """One aiortc negotiation step, bounded. What aiortc refuses of the client's SDP
        (its own sentences) is `bad_sdp`; anything else it raises is a bug, reported by
        the worker's boundary as `internal` with an error id."""
        try:
            return await asyncio.wait_for(step, NEGOTIATION_TIMEOUT_S)
        except TimeoutError as exc:
            raise SignalError(errors.INTERNAL, "negotiation timed out", pc_id) from exc
        except (ValueError, InvalidAccessError, InvalidStateError) as exc:
            raise SignalError(errors.BAD_SDP, f"negotiation failed: {exc}", pc_id) from exc

    def _watch(self, member: Member, peer: Peer) -> None:
        """A pc that ends without being asked to (consent expired, ICE failed, the
        client closed it) is taken down out loud: logged, counted, its member told."""

        @peer.pc.on("connectionstatechange")
        async def on_state() -> None:
            if peer.pc.connectionState == "connected":
                peer.connected = True
                peer.settled_at = None
            if (
                peer.pc.connectionState in ("failed", "closed")
                and member.peers.get(peer.id) is peer
            ):
                async with self._lock:
                    await self._end_peer(member, peer, ended_reason(peer.pc))

    async def _end_peer(self, member: Member, peer: Peer, reason: str, **detail: Any) -> None:
        """Close a pc the client did not ask to close, and tell the client (`closed`),
        which publishes or subscribes again."""
        if member.peers.get(peer.id) is not peer:
            return
        recovery = "republish" if peer.direction == "publish" else "resubscribe"
        quiet = reason in ("closed_by_peer", "offer_expired")  # the client's doing
        level = logging.INFO if quiet else logging.WARNING
        log.log(
            level,
            "room %s: %s pc %r of member %s ended: %s %s",
            self.id,
            peer.direction,
            peer.id,
            member.id,
            reason,
            detail or "",
        )
        if not quiet:
            self._fault(reason, member.id, peer.id, recovery=recovery, **detail)
        await self._close_peer(member, peer)
        self._emit(member.id, {"op": "closed", "pc": peer.id, "reason": reason})

    def _fault(self, what: str, member_id: str, pc_id: str, **detail: Any) -> None:
        self.faults[what] += 1
        self._emit(None, {"op": "fault", "what": what, "member": member_id, "pc": pc_id, **detail})

    async def _close_peer(self, member: Member, peer: Peer) -> None:
        if member.peers.get(peer.id) is not peer:
            return
        del member.peers[peer.id]
        if peer.slot is not None:
            self._ledger.release(peer.slot)
        for output in peer.outputs:
            output.source.remove_output(output.key)
            self._watchdog.forget(output)
        self._watchdog.forget(peer)
        removed = []
        for source in peer.sources:
            self.tracks.pop(source.id, None)
            source.stop_speaking()
            source.close()
            recorder = self._recorders.pop(source.id, None)
            if recorder is not None:
                recorder.close()
            removed.append(source.id)
        if removed:
            self._emit(None, {"op": "tracks", "added": [], "removed": removed})
        await peer.pc.close()

    def _on_speaking(self, source: TrackSource, speaking: bool) -> None:
        self._emit(
            None,
            {
                "op": "speaking",
                "member": source.member_id,
                "track": source.id,
                "speaking": speaking,
            },
        )

    # -- the watchdog -------------------------------------------------------

    async def watch(self, now: float) -> None:
        """Once a second: close pcs whose offer went unanswered or that never connected
        (their sockets are freed, their member told `closed`); find media that stopped
        while its input did not, and recover.

        A publishing pc whose datagrams arrive while none of its tracks gets a packet is
        closed and its publisher told to publish again. One subscriber's copy of a track
        that forwards nothing while the track's packets arrive is restarted (new base, a
        keyframe); if it stays stalled its pc is closed and the subscriber told to
        subscribe again. Audio that stopped arriving stops "speaking".
        """
        async with self._lock:
            for member in list(self.members.values()):
                for peer in list(member.peers.values()):
                    if member.peers.get(peer.id) is peer:
                        await self._watch_peer(member, peer, now)

    async def _watch_peer(self, member: Member, peer: Peer, now: float) -> None:
        limits = self._ledger.limits
        if peer.offered_at is not None and now - peer.offered_at > limits.offer_timeout_s:
            await self._end_peer(member, peer, "offer_expired")
            return
        if peer.settled_at is not None and now - peer.settled_at > limits.connect_timeout_s:
            await self._end_peer(member, peer, "not_connected")
            return
        for source in peer.sources:
            source.check_silence(time.monotonic())
        if peer.arrivals is not None:
            tapped = sum(s.packets for s in peer.sources)
            if self._watchdog.observe(peer, now, peer.arrivals.count, tapped, True) in (
                Verdict.STALLED,
                Verdict.STILL_STALLED,
            ):
                await self._end_peer(member, peer, "receive_stalled")
                return
        for output in [o for o in peer.outputs if o.attached]:
            verdict = self._watchdog.observe(
                output, now, output.source.packets, output.forwarded, output.live
            )
            if verdict is Verdict.STALLED:
                log.warning(
                    "room %s: track %s stopped reaching member %s (pc %r); restarting it",
                    self.id,
                    output.source.id,
                    member.id,
                    peer.id,
                )
                self._fault(
                    "forward_stalled",
                    member.id,
                    peer.id,
                    track=output.source.id,
                    recovery="restart",
                )
                output.restart()
            elif verdict is Verdict.STILL_STALLED:
                await self._end_peer(member, peer, "forward_stalled", track=output.source.id)
                return

    async def leave(self, member_id: str) -> None:
        async with self._lock:
            member = self.members.pop(member_id, None)
            if member is not None:
                for peer in list(member.peers.values()):
                    await self._close_peer(member, peer)

    async def close(self) -> None:
        for member_id in list(self.members):
            await self.leave(member_id)
        self.stop_recording()

    # -- recording ----------------------------------------------------------

    def start_recording(self, directory: Path, session_start: float) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._recording = (directory, session_start)
        for source in self.tracks.values():
            self._start_recorder(source)

    def _start_recorder(self, source: TrackSource) -> None:
        if self._recording is None or source.id in self._recorders:
            return
        directory, session_start = self._recording
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", source.id)
        path = directory / f"{name}-{int(time.time() * 1000)}.frames"
        header = {
            "track": source.id,
            "member": source.member_id,
            "kind": source.kind,
            "layout": source.layout,
            "codec": "VP8" if source.kind == "video" else "opus",
            "clock_rate": 90000 if source.kind == "video" else 48000,
            "channels": 2,
            "session_start": session_start,
        }
        recorder = self._recorders[source.id] = TrackRecorder(path, header, session_start)
        source.recorder = recorder.on_packet

    def stop_recording(self) -> list[str]:
        self._recording = None
        paths = []
        for track_id, recorder in self._recorders.items():
            recorder.close()
            source = self.tracks.get(track_id)
            if source is not None:
                source.recorder = None
            paths.append(str(recorder.path))
        self._recorders.clear()
        return paths
