"""The session writer: the room's `Recorder`, never waiting on the disk.

Threads. `write()` (alias `record()`) is called from the room's thread: it encodes
the record (msgpack, a couple of microseconds) and appends it to an in-memory buffer
under a lock. `flush()` is called from one worker thread (the server's, or the one
`start_flusher()` starts) at least once a second: it takes the buffer, frames and
checksums it, appends it to the current segment, fsyncs, rolls and seals segments
(zstd) and rewrites the manifest and index. `add_media_track()` and `stats()` may be called
from any thread. `close()` flushes, seals and marks the session sealed.

Overflow policy. The buffer holds at most `max_buffer_bytes`. A write that does not
fit waits for the flusher at most `max_block_s` (default 20 ms); if there is still no
room the record is dropped, counted (`stats()["dropped"]`), logged at ERROR, and the
log gets a `gap` record (first/last tick, count) before the next record that fits, so
`verify` reports the session as not intact. Nothing is lost without a trace.

Signing. With a `signing_key` (the server passes one derived from its secret), each
flush appends a checkpoint (bytes flushed, HMAC of that prefix) beside the segment
being written, each sealed segment's chained HMAC goes into the index, and every
manifest written is signed (`replay.signing`). What the disk holds is therefore
provable: everything up to the last flush, even after `kill -9`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from replay import format as fmt
from replay import layout, signing
from replay.errors import ReplayError
from replay.index import IndexFile, SegmentInfo
from replay.manifest import Manifest, utc_iso
from rooms.records import Record

log = logging.getLogger("grandrounds.replay")
MANIFEST_KINDS = frozenset({"start", "join", "leave", "expire", "ended"})


def new_session_id(room_id: str = "room") -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in room_id)[:40] or "room"
    return f"{stamp}-{safe}-{uuid.uuid4().hex[:6]}"


def seal_segment(raw: Path, level: int = 3, durable: bool = True) -> Path:
    """Compress a finished raw segment into `.grs.zst` (atomically), then remove the raw."""
    sealed = raw.with_name(raw.name + ".zst")
    tmp = sealed.with_name(sealed.name + ".tmp")
    data = raw.read_bytes()
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
    with open(tmp, "wb") as f:
        f.write(cctx.compress(data))
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, sealed)
    if durable:
        layout.fsync_dir(sealed.parent)
    raw.unlink()
    return sealed


@dataclass(frozen=True, slots=True)
class ContinuePoint:
    """Where a writer takes up a session another process recorded (replay.continuation)."""

    manifest: Manifest
    index: IndexFile
    records: int
    """Records the log already holds: the next one gets this index."""


def _write_all(file: BinaryIO, data: bytes) -> None:
    """Write every byte to an unbuffered file (a raw write may take only part of them)."""
    view = memoryview(data)
    while view:
        written = file.write(view)
        if not written:
            raise OSError("the disk took no bytes")
        view = view[written:]


class SessionWriter:
    """Records one session into `<data_dir>/sessions/<session_id>/`."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        session_id: str | None = None,
        *,
        server_version: str = "",
        segment_bytes: int = 1024 * 1024,
        max_buffer_bytes: int = 32 * 1024 * 1024,
        max_block_s: float = 0.02,
        fsync: bool = True,
        compress_level: int = 3,
        signing_key: bytes | None = None,
        continue_after: ContinuePoint | None = None,
    ) -> None:
        self.session_id = layout.check_session_id(session_id or new_session_id())
        self.path = layout.sessions_root(data_dir) / self.session_id
        try:
            self.path.mkdir(parents=True, exist_ok=continue_after is not None)
        except FileExistsError:
            raise ReplayError(
                "session-exists", f"session {self.session_id!r} already exists"
            ) from None
        self._segment_bytes = segment_bytes
        self._max_buffer = max_buffer_bytes
        self._max_block = max_block_s
        self._fsync = fsync
        self._level = compress_level
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._flush_lock = threading.Lock()
        self._buffer: list[tuple[bool, int, int, bytes]] = []  # (keyframe?, index, tick, payload)
        self._buffered = 0
        self._next_index = 0
        self._gap: dict[str, int] | None = None
        self._closed = False
        self._manifest_dirty = True
        self._stats: dict[str, Any] = {
            "records": 0,
            "bytes": 0,
            "flushes": 0,
            "waits": 0,
            "dropped": 0,
            "gaps": 0,
            "buffer_peak": 0,
            "flush_s_max": 0.0,
            "write_errors": 0,
        }
        self.manifest = Manifest(
            session_id=self.session_id,
            started_at=utc_iso(time.time()),
            server_version=server_version,
        )
        self._index = IndexFile([])
        self._key = signing_key
        self._chain = signing.NO_MAC
        """The MAC of the last sealed segment (what the next segment's MAC chains to)."""
        self._durable = 0
        """Records appended and fsync'd so far (a crash keeps at least these)."""
        if continue_after is not None:
            self.manifest = continue_after.manifest
            self.manifest.status = "recording"
            self._index = continue_after.index
            self._next_index = self._durable = continue_after.records
            last_mac = self._index.segments[-1].mac if self._index.segments else None
            self._chain = bytes.fromhex(last_mac) if last_mac else signing.NO_MAC
        self._seg_no = len(self._index.segments)
        self._seg_info = SegmentInfo(self._seg_no, 0)
        self._seg_mac = signing.SegmentMac(b"", self.session_id, self._seg_no, self._chain)
        self._checkpoints: BinaryIO | None = None
        self._file: BinaryIO = self._open_segment(self._seg_no)
        self._write_manifest()
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()

    # -- room thread -----------------------------------------------------------
    def write(self, record: Record) -> int | None:
        """Take one record; returns at once unless the buffer is full (see module doc).

        The record's index in the log, or None when it had to be dropped."""
        with self._lock:
            if self._closed:
                raise ReplayError("closed", f"session {self.session_id} is closed")
            if self._gap is not None and self._buffered < self._max_buffer:
                self._append_gap()
            index = self._next_index
            payload = fmt.pack_payload(index, record)
            size = len(payload) + fmt.FRAME.size
            if self._buffered + size > self._max_buffer and not self._wait_for_room(size):
                self._drop(record)
                return None
            self._next_index = index + 1
            self._buffer.append((record.kind == "keyframe", index, record.tick, payload))
            self._buffered += size
            if self._buffered > self._stats["buffer_peak"]:
                self._stats["buffer_peak"] = self._buffered
            if record.kind in MANIFEST_KINDS and self.manifest.observe(record):
                self._manifest_dirty = True
            return index

    def record(self, record: Record) -> None:
        self.write(record)

    def _wait_for_room(self, size: int) -> bool:
        self._stats["waits"] += 1
        deadline = time.monotonic() + self._max_block
        while self._buffered + size > self._max_buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._drained.wait(remaining):
                return self._buffered + size <= self._max_buffer
        return True

    def _drop(self, record: Record) -> None:
        self._stats["dropped"] += 1
        if self._gap is None:
            self._manifest_dirty = True
            self._gap = {"count": 0, "first_tick": record.tick, "last_tick": record.tick}
            log.error(
                "replay %s: recording buffer full (%d bytes); dropping records from tick %d",
                self.session_id,
                self._buffered,
                record.tick,
            )
        self._gap["count"] += 1
        self._gap["last_tick"] = record.tick

    def _append_gap(self) -> None:
        assert self._gap is not None
        gap, self._gap = self._gap, None
        index = self._next_index
        self._next_index += 1
        payload = fmt.pack_payload(index, Record("gap", gap["last_tick"], gap))
        self._buffer.append((False, index, gap["last_tick"], payload))
        self._buffered += len(payload) + fmt.FRAME.size
        self._stats["gaps"] += 1
        log.error("replay %s: %d records dropped (gap recorded)", self.session_id, gap["count"])

    # -- any thread --------------------------------------------------------------
    def add_media_track(
        self,
        track_id: str,
        kind: str,
        *,
        member: Any = None,
        uri: str = "",
        clock_offset_ms: float = 0.0,
        **extra: Any,
    ) -> None:
        """Name a media recording; its time 0 is at `clock_offset_ms` on the session clock."""
        track = {
            "id": track_id,
            "kind": kind,
            "member": member,
            "uri": uri,
            "clock_offset_ms": clock_offset_ms,
            **extra,
        }
        with self._lock:
            self.manifest.media_tracks = [
                t for t in self.manifest.media_tracks if t["id"] != track_id
            ] + [track]
            self._manifest_dirty = True

    def stats(self) -> dict[str, Any]:
        """Counters for metrics: records, bytes, dropped, gaps, waits, buffer peak...;
        `handed`: records handed to `write()` so far (the next record's index);
        `durable`: records appended and fsync'd (every index below it survives a crash).
        A host that must not acknowledge what a crash could lose notes `handed` after a
        tick and sends that tick's replies once `durable` has reached it."""
        with self._lock:
            return dict(
                self._stats,
                buffered=self._buffered,
                handed=self._next_index,
                durable=self._durable,
            )

    # -- flusher thread ----------------------------------------------------------
    def flush(self, limit: int | None = None) -> None:
        """Append what is buffered to disk durably; call at least once a second.

        With `limit`, only records whose index is below it (a cluster node writes only
        what the cluster already holds: server/room_backlog.py); the rest stay buffered.
        Raises OSError if the disk refuses; nothing is lost (the records stay buffered
        and the next flush retries), but the buffer fills if the disk stays broken.
        """
        with self._flush_lock:
            started = time.monotonic()
            with self._lock:
                cut = len(self._buffer)
                if limit is not None:
                    cut = next(
                        (i for i, b in enumerate(self._buffer) if b[1] >= limit), len(self._buffer)
                    )
                batch, self._buffer = self._buffer[:cut], self._buffer[cut:]
                self._buffered -= sum(len(b[3]) + fmt.FRAME.size for b in batch)
                self._drained.notify_all()
                manifest_dirty, self._manifest_dirty = self._manifest_dirty, False
            if self._file.closed:
                return
            sealed = len(self._index.segments)
            done = 0
            while done < len(batch):
                done = self._append_run(batch, done)
            with self._lock:
                self.manifest.records += len(batch)
            if manifest_dirty or len(self._index.segments) != sealed:
                self._write_manifest()
            elapsed = time.monotonic() - started
            with self._lock:
                self._stats["flushes"] += 1
                self._stats["records"] += len(batch)
                self._stats["bytes"] += sum(len(b[3]) + fmt.FRAME.size for b in batch)
                self._stats["flush_s_max"] = max(self._stats["flush_s_max"], elapsed)

    def _append_run(self, batch: list[tuple[bool, int, int, bytes]], start: int) -> int:
        """Append records from `start` up to the next segment roll, durably; the index
        after the run. On a write error the segment is cut back to where the run began,
        the unwritten records go back to the front of the buffer, and the error is raised.
        """
        size = self._seg_info.raw_bytes
        first_keyframe = batch[start][0]
        if size >= 4 * self._segment_bytes or (first_keyframe and size >= self._segment_bytes):
            self._roll()
        base = self._seg_info.raw_bytes
        frames: list[bytes] = []
        end = start
        grown = base
        while end < len(batch):
            is_keyframe, _, _, payload = batch[end]
            if end > start and (
                grown >= 4 * self._segment_bytes or (is_keyframe and grown >= self._segment_bytes)
            ):
                break
            frames.append(fmt.encode_frame(payload))
            grown += len(frames[-1])
            end += 1
        try:
            _write_all(self._file, b"".join(frames))
            if self._fsync:
                os.fsync(self._file.fileno())
        except OSError as exc:  # an operational fault (a full disk), not a bug: one line
            log.error("replay %s: cannot write the recording: %s", self.session_id, exc)
            with contextlib.suppress(OSError):
                self._file.truncate(base)
                self._file.seek(base)
            with self._lock:
                self._buffer[:0] = batch[start:]
                self._buffered += sum(len(b[3]) + fmt.FRAME.size for b in batch[start:])
                self._stats["write_errors"] += 1
            raise
        for (is_keyframe, index, tick, _), frame in zip(batch[start:end], frames, strict=True):
            self._place(is_keyframe, index, tick, len(frame))
        for frame in frames:
            self._seg_mac.update(frame)
        self._checkpoint()
        with self._lock:
            self._durable = batch[end - 1][1] + 1
        return end

    def _checkpoint(self) -> None:
        """Prove what this segment holds so far (replay.signing): after the segment's own
        fsync, so a checkpoint never names bytes that might not be on the disk."""
        if self._checkpoints is None:
            return
        try:
            self._checkpoints.write(
                signing.encode_checkpoint(self._seg_info.raw_bytes, self._seg_mac.value())
            )
            self._checkpoints.flush()
            if self._fsync:
                os.fsync(self._checkpoints.fileno())
        except OSError as exc:  # the records are safe; the next flush's checkpoint covers them
            log.error("replay %s: cannot write a checkpoint: %s", self.session_id, exc)

    def _place(self, is_keyframe: bool, index: int, tick: int, size: int) -> None:
        info = self._seg_info
        if info.records == 0:
            info.first_record, info.first_tick = index, tick
        info.records += 1
        info.last_tick = tick
        if is_keyframe:
            info.keyframes.append([tick, info.raw_bytes, index])
        info.raw_bytes += size

    def _open_segment(self, n: int) -> BinaryIO:
        self._seg_no = n
        self._seg_info = SegmentInfo(n, fmt.HEADER.size)
        path = self.path / layout.segment_name(n, sealed=False)
        # Unbuffered: a write the disk refuses leaves nothing behind in a Python buffer to be
        # written later, so cutting the segment back to where the run began is exact.
        f = open(path, "xb", buffering=0)  # noqa: SIM115
        header = fmt.encode_header(n)
        _write_all(f, header)
        self._seg_mac = signing.SegmentMac(self._key or b"", self.session_id, n, self._chain)
        self._seg_mac.update(header)
        if self._key is not None:
            self._checkpoints = open(signing.checkpoint_path(path), "ab")  # noqa: SIM115
        return f

    def _roll(self) -> None:
        self._seal_current()
        self._file = self._open_segment(self._seg_no + 1)

    def _seal_current(self) -> None:
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())
        self._file.close()
        raw = self.path / layout.segment_name(self._seg_no, False)
        seal_segment(raw, self._level, self._fsync)
        self._seg_info.sealed = True
        if self._key is not None:
            self._chain = self._seg_mac.value()
            self._seg_info.mac = self._chain.hex()
        self._index.segments.append(self._seg_info)
        self._index.save(self.path, durable=self._fsync)
        if self._checkpoints is not None:  # the index holds the segment's MAC now
            self._checkpoints.close()
            self._checkpoints = None
            signing.checkpoint_path(raw).unlink(missing_ok=True)

    def _write_manifest(self) -> None:
        """Rewrite the manifest (when it changed, at each seal and at close only)."""
        with self._lock:
            self.manifest.writer = {k: self._stats[k] for k in ("dropped", "gaps", "waits")}
            snapshot = self.manifest.to_json()
        if self._key is not None:
            chain = self._chain if self._index.segments else None
            snapshot = signing.sign_manifest(self._key, snapshot, self._index.to_json(), chain)
        layout.write_json_atomic(self.path / "manifest.json", snapshot, durable=self._fsync)

    def start_flusher(self, interval_s: float = 0.5) -> threading.Thread:
        """Flush from a daemon thread every `interval_s` until `close()`."""

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.flush()
                except Exception:  # keep recording; the next flush retries
                    log.exception("replay %s: flush failed", self.session_id)

        self._flusher = threading.Thread(target=run, name=f"replay-{self.session_id}", daemon=True)
        self._flusher.start()
        return self._flusher

    def close(self) -> None:
        """Flush, seal the last segment, and mark the session sealed. Idempotent."""
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.flush()
        with self._flush_lock:
            self._seal_current()
            with self._lock:
                self.manifest.status = "sealed"
                self.manifest.ended_at = utc_iso(time.time())
            self._write_manifest()

    def abandon(self) -> None:
        """Stop without writing anything more or sealing: another process carries the
        session on (a room that moved). What is buffered is dropped on purpose."""
        self._stop.set()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._buffer, self._buffered = [], 0
        with self._flush_lock:
            self._file.close()
            if self._checkpoints is not None:
                self._checkpoints.close()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
