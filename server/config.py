"""Server configuration: flags override `GRANDROUNDS_*` environment variables.

Without an admin key or a signing secret the server makes its own and keeps them in
the data directory, so tokens handed out stay valid across a restart.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from media.limits import PeerLimits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRANDROUNDS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    data_dir: Path = Path("data")
    cases_dir: Path | None = None
    """Educators' case files, beside the shipped ones (default: `data_dir/cases`); uploads
    over the API are written here."""
    public_url: str = ""
    """Base URL put in join links; defaults to http://host:port."""
    admin_key: str = ""
    secret: str = ""
    tick_hz: int = Field(default=30, ge=1, le=120)
    grace_seconds: float = Field(default=30.0, gt=0)
    idle_timeout_seconds: float = Field(default=600.0, gt=0)
    token_ttl_seconds: int = Field(default=12 * 3600, gt=0)
    max_rooms: int = Field(default=64, ge=1)
    max_clients_per_room: int = Field(default=2000, ge=1)
    socket_send_buffer: int = Field(default=0, ge=0)
    """SO_SNDBUF for client sockets (0: the OS default); caps kernel memory per client."""
    send_queue_bytes: int = Field(default=512 * 1024, ge=16 * 1024)
    slow_drop_seconds: float = Field(default=5.0, gt=0)
    client_timeout_seconds: float = Field(default=30.0, gt=0)
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long an HTTP request (headers and body) or response may take, whole."""
    max_connections: int = Field(default=10_000, ge=1)
    """Open HTTP and WebSocket connections at most (lowered to fit the descriptor limit)."""
    media_workers: int = Field(default=1, ge=0, le=16)
    """Media worker processes (0: no voice or video)."""
    ice_servers: list[dict[str, str]] = Field(default_factory=list)
    """STUN/TURN servers for real deployments, as RTCIceServer maps; none on loopback."""
    ice_host_addresses: list[str] | None = None
    """Gather ICE candidates only on these addresses (e.g. ["127.0.0.1"] in tests)."""
    media_peer_limits: PeerLimits = Field(default_factory=PeerLimits)
    """Peer connections per member, room and media worker (docs/media.md, "Limits")."""
    recording_failure_seconds: float = Field(default=30.0, gt=0)
    """How long a room runs while its recording cannot be written before it ends."""
    redis_url: str = ""
    """Valkey/Redis URL: makes this process a node of a cluster (docs/operations.md)."""
    node_id: str = ""
    """This node's name in the cluster (default: host:port)."""
    rate_per_second: float = Field(default=100.0, gt=0)
    rate_burst: float = Field(default=200.0, gt=0)

    @property
    def cases_folder(self) -> Path:
        return self.cases_dir if self.cases_dir is not None else self.data_dir / "cases"

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def with_secrets(self) -> Settings:
        """Fill in a missing admin key or secret from (or into) `data_dir/secrets.json`.

        Only what is missing is made and stored: a key given in the environment (or a
        flag) is used as it is and never written, so the file never holds a key that
        differs from the one in use."""
        if self.admin_key and self.secret:
            return self
        path = self.data_dir / "secrets.json"
        stored: dict[str, str] = {}
        if path.exists():
            stored = json.loads(path.read_text())
        changed = False
        for name in ("admin_key", "secret"):
            if getattr(self, name):
                continue
            if not stored.get(name):
                stored[name] = secrets.token_urlsafe(32)
                changed = True
        if changed:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(stored))
            os.chmod(tmp, 0o600)
            tmp.replace(path)
        return self.model_copy(
            update={
                "admin_key": self.admin_key or stored["admin_key"],
                "secret": self.secret or stored["secret"],
            }
        )

    def given_by_operator(self, name: str) -> bool:
        """Whether a secret came from the environment, not from `secrets.json`."""
        return f"GRANDROUNDS_{name.upper()}" in os.environ

    def admin_key_origin(self) -> str:
        """Where the admin key in use comes from, for the start-up message."""
        if "GRANDROUNDS_ADMIN_KEY" in os.environ:
            return "from GRANDROUNDS_ADMIN_KEY"
        return f"stored in {self.data_dir / 'secrets.json'}"
