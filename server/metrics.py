"""Prometheus metrics, on a registry of the server's own (so tests can run several servers)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.rooms = Gauge("grandrounds_rooms", "Rooms by status", ["status"], registry=r)
        self.clients = Gauge(
            "grandrounds_clients", "Connected clients by role", ["role"], registry=r
        )
        self.tick_seconds = Histogram(
            "grandrounds_tick_duration_seconds",
            "Time to run one room tick and fan it out",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1),
            registry=r,
        )
        self.bytes_sent = Counter("grandrounds_bytes_sent", "Bytes written to clients", registry=r)
        self.frames_sent = Counter(
            "grandrounds_frames_sent", "State frames written to clients", registry=r
        )
        self.sends_skipped = Counter(
            "grandrounds_sends_skipped",
            "State frames skipped because a client was slow",
            registry=r,
        )
        self.clients_dropped = Counter(
            "grandrounds_clients_dropped",
            "Clients disconnected by the server",
            ["reason"],
            registry=r,
        )
        self.errors = Counter(
            "grandrounds_client_errors", "Errors sent to clients", ["code"], registry=r
        )
        self.media_faults = Counter(
            "grandrounds_media_faults",
            "Media that stopped on its own (a pc's consent expired, ICE failed, forwarding "
            "stalled while packets kept coming), by what happened and how it was recovered",
            ["what", "recovery"],
            registry=r,
        )
        self.connections = Gauge(
            "grandrounds_connections", "Open HTTP and WebSocket connections", registry=r
        )
        self.connections_refused = Counter(
            "grandrounds_connections_refused",
            "Connections refused because the server had as many as it takes",
            registry=r,
        )
        self.connection_faults = Counter(
            "grandrounds_connection_faults",
            "Connections ended by an unexpected server error (each logged with an error id)",
            registry=r,
        )
        self.feed_entries = Counter(
            "grandrounds_spectator_feed_entries",
            "Entries of rooms' spectator feeds (for relays), appended or dropped",
            ["outcome"],
            registry=r,
        )
        self.frame_encodes = Counter(
            "grandrounds_frame_encodes", "Distinct state frames encoded", registry=r
        )

        self.recording_dropped = Gauge(
            "grandrounds_recording_dropped_records",
            "Records a room's recording could not keep (the disk was too slow)",
            ["room"],
            registry=r,
        )
        self.recording_buffered = Gauge(
            "grandrounds_recording_buffered_bytes",
            "Bytes of a room's recording waiting to be written",
            ["room"],
            registry=r,
        )
        self.recording_lag = Gauge(
            "grandrounds_recording_lag_seconds",
            "Seconds since a room's recording was last written out (0 while flushes succeed)",
            ["room"],
            registry=r,
        )
        self.rooms_failed = Counter(
            "grandrounds_rooms_failed",
            "Rooms ended by their fault boundary (internal_error, recording_failed)",
            ["reason"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
