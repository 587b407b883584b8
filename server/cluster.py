"""This process as a node of a cluster: its listing, its rooms' leases, the directory.

`serve --redis URL` makes a `Cluster` part of the server. It shares the cluster's
signing secret and admin key through Valkey (so a link made by any node works on any
node), lists the node with its load under a lease, places new rooms on the
least-loaded live node, answers for rooms that live elsewhere (where to connect, their
info, ending them), and every couple of seconds sweeps the directory: it opens rooms
placed on it and takes over rooms whose owner's lease has expired (`server/takeover.py`).
Each room it owns holds a fenced lease renewed from the room's own loop, keeps its
records since the latest keyframe in Valkey for a successor, and feeds its spectator
stream to relays.

Valkey being away is not the rooms being away: owned rooms keep running and their
clients stay connected; only what needs the directory (placing, redirecting, taking
over) waits for it to come back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import msgpack
import trio
from coredis.tokens import PureToken

from netcode.views import Role
from server.boundary import report_fault
from server.directory import RoomDirectory, RoomEntry, RoomStatus
from server.nodes import CpuMeter, NodeInfo, NodeKind, NodeRegistry
from server.refusals import RoomRefused
from server.room_backlog import RoomBacklog, TeeRecorder
from server.room_lease import RENEW_SECONDS, RoomLease, Superseded
from server.spectator_feed import attach_spectator_feed
from server.takeover import read_backlog, rebuild
from server.valkey import Keys, Valkey, ValkeyUnavailable, text

if TYPE_CHECKING:
    from server.app import Server
    from server.room_host import RoomHost

log = logging.getLogger(__name__)
STARTUP_SECONDS: Final = 30.0
"""How long a node waits for Valkey when it starts before giving up."""
TAKEOVER_STAGGER_SECONDS: Final = 0.3
"""Each node waits this long per place in the load order before claiming an orphaned
room, so the least-loaded live node usually takes it."""
CONTROL_WAIT_MS: Final = 1000
"""How long one read of the control stream blocks (within Valkey calls' timeout)."""
CONTROL_BACKLOG: Final = 100
SWEEP_SECONDS: Final = 1.0
"""How often a node looks for rooms placed on it or left without an owner."""
DRAIN_SECONDS: Final = 10.0
"""How long a draining node waits for its rooms to hand over (docs/operations.md)."""
LOCATE_SECONDS: Final = 10.0
"""How long a hello for a room that is moving waits for it to land somewhere."""


class ClusterStartupError(Exception):
    """The node cannot join its cluster (Valkey unreachable, secrets that disagree)."""


class Cluster:
    def __init__(self, server: Server, valkey: Valkey) -> None:
        self.server = server
        self.valkey = valkey
        settings = server.settings
        self.node_id = settings.node_id or f"{settings.host}:{server.port}"
        self.registry = NodeRegistry(valkey, self.describe)
        self.directory = RoomDirectory(valkey)
        self.leases: dict[str, RoomLease] = {}
        self.backlogs: dict[str, RoomBacklog] = {}
        self.moving: set[str] = set()
        """Rooms this node is handing over (draining): their successors take them at once."""
        self.entries: dict[str, RoomEntry] = {}
        """The directory entries of the rooms this node owns (rewritten if Valkey loses them)."""
        self.draining = False
        self.node_urls: list[str] = []
        """WebSocket URLs of the live nodes, as of the last sweep (sent in `welcome`)."""
        self._cpu = CpuMeter()
        self._cpu_rate = 0.0
        self._nursery: trio.Nursery | None = None
        self._opening: set[str] = set()

    def describe(self) -> NodeInfo:
        live = [h for h in self.server.rooms.values() if not h.stopped]
        return NodeInfo(
            id=self.node_id,
            kind=NodeKind.NODE,
            url=self.server.settings.base_url(),
            rooms=sorted(h.room.id for h in live),
            clients=sum(len(h.links) for h in live),
            cpu=self._cpu_rate,
            draining=self.draining,
        )

    # -- running -----------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Join the cluster, then keep the listing, the leases and the directory in order."""
        await self._share_secrets()
        await self.registry.announce()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.registry.heartbeat_forever)
            nursery.start_soon(self._sweep_forever)
            nursery.start_soon(self._listen_for_control)
            task_status.started()

    async def _share_secrets(self) -> None:
        """Adopt the cluster's secret and admin key (or offer ours if it has none yet)."""
        settings = self.server.settings
        client = self.valkey.client
        with trio.move_on_after(STARTUP_SECONDS):
            while True:
                try:
                    for field in ("secret", "admin_key"):
                        await self.valkey.call(
                            client.hsetnx(Keys.SECRETS, field, getattr(settings, field))
                        )
                    stored = await self.valkey.call(client.hgetall(Keys.SECRETS))
                    break
                except ValkeyUnavailable as exc:
                    log.warning("cluster: waiting for Valkey (%s)", exc)
                    await trio.sleep(1.0)
            shared = {k.decode(): v.decode() for k, v in stored.items()}
            for field in ("secret", "admin_key"):
                if settings.given_by_operator(field) and getattr(settings, field) != shared[field]:
                    raise ClusterStartupError(
                        f"GRANDROUNDS_{field.upper()} differs from the cluster's; "
                        "every node must share it (or leave it unset to adopt the cluster's)"
                    )
            self.server.settings = settings.model_copy(update=shared)
            return
        raise ClusterStartupError(f"Valkey did not answer for {STARTUP_SECONDS:g} s")

    async def withdraw(self) -> None:
        with contextlib.suppress(ValkeyUnavailable):  # else the lease expires by itself
            await self.registry.withdraw()

    # -- rooms this node owns ------------------------------------------------------
    def adopt(self, host: RoomHost, lease: RoomLease, tee: TeeRecorder) -> None:
        """Tie a room this node now owns to the cluster: lease, backlog, spectator feed."""
        self.leases[host.room.id] = lease
        attach_spectator_feed(host, lease)  # first: its last entry needs the lease
        backlog = RoomBacklog(lease, tee)
        self.backlogs[host.room.id] = backlog
        host.on_tick.append(backlog.on_tick)
        host.companions.append(backlog.run)
        host.companions.append(lambda: self._keep_lease(host, lease, backlog))
        host.flush_limit = lambda: backlog.durable_limit
        host.on_new_session.append(
            lambda session, member: self._remember_session(host, session, member)
        )
        host.set_peers(self.node_urls)
        host.on_stop.append(self._room_stopped)

    async def _keep_lease(self, host: RoomHost, lease: RoomLease, backlog: RoomBacklog) -> None:
        """Renew the lease while the room's loop is alive.

        A room whose loop stopped ticking stops renewing, so it loses its lease and a
        successor takes it. An owner cut off from Valkey keeps its room running (its
        replay log waits for the backlog, `RoomBacklog.durable_limit`).
        """
        with contextlib.suppress(ValkeyUnavailable):
            await self.registry.announce()  # placement counts this room now, not a beat later
        last_tick = -1
        while True:
            with trio.move_on_after(RENEW_SECONDS):
                await backlog.superseded.wait()
                self._superseded(host, "its spectator feed or backlog was refused")
                return
            if host.room.tick_no == last_tick:
                continue  # the loop is stuck: let the lease run out
            last_tick = host.room.tick_no
            try:
                await lease.renew()
            except ValkeyUnavailable:
                continue
            except Superseded:
                self._superseded(host, "a newer epoch claimed it")
                return

    def _superseded(self, host: RoomHost, why: str) -> None:
        log.warning(
            "room %s: this node no longer owns it (%s); ending this copy", host.room.id, why
        )
        self.leases.pop(host.room.id, None)
        host.step_down("moved", "this room moved to another node; reconnecting finds it")

    def _remember_session(self, host: RoomHost, session: str, member: int) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self._store_session, host.room.id, session, member)

    async def _store_session(self, room_id: str, session: str, member: int) -> None:
        with contextlib.suppress(ValkeyUnavailable):  # else it rejoins as a new member
            await self.valkey.call(
                self.valkey.client.hset(Keys.room_sessions(room_id), {session: member})
            )

    async def _room_stopped(self, host: RoomHost) -> None:
        room_id = host.room.id
        self.entries.pop(room_id, None)
        backlog = self.backlogs.pop(room_id, None)
        lease = self.leases.pop(room_id, None)
        if lease is None:
            return  # superseded: the directory entry is the successor's now
        if room_id in self.moving:
            self.moving.discard(room_id)
            try:
                if backlog is not None:
                    await backlog.hand_over()
                await lease.release()  # a successor need not wait for the lease to expire
            except (ValkeyUnavailable, Superseded):
                log.warning("room %s: handed over as far as Valkey allowed", room_id)
            return
        try:
            await self.directory.update(
                host.room.id, status=RoomStatus.ENDED.value, end_reason=host.room.end_reason
            )
            await self.directory.forget(host.room.id)
            await lease.release()
        except (ValkeyUnavailable, Superseded):
            log.warning("room %s ended; the directory learns it when Valkey is back", host.room.id)

    # -- the directory: creating, finding and ending rooms anywhere -----------------
    async def create(
        self,
        title: str,
        case: str,
        seed: int | None,
        request_id: str | None,
        *,
        room_id: str | None = None,
    ) -> RoomEntry:
        """Place a room on the least-loaded live node (idempotent by `request_id`)."""
        if self.draining:
            raise RoomRefused("draining", "this node is shutting down; ask another node")
        nodes = [n for n in await self.registry.live(NodeKind.NODE) if not n.draining]
        if not nodes:
            raise RoomRefused("no_nodes", "no node of the cluster can take a room now")
        target = min(nodes, key=lambda n: n.load)
        entry, made = await self.directory.reserve(
            request_id or secrets.token_urlsafe(12),
            title=title,
            case=case,
            seed=secrets.randbelow(2**31) if seed is None else seed,
            node=target.id,
            room_id=room_id,
        )
        if made:
            await self._nudge(target.id, {"open": entry.id})
        return await self.directory.wait_running(entry.id)

    async def _nudge(self, node_id: str, message: dict[str, str]) -> None:
        """Tell a node to act now (it would find out at its next sweep anyway)."""
        if node_id == self.node_id:
            await self._on_control(message)
            return
        await self.valkey.call(
            self.valkey.client.xadd(
                Keys.control(node_id),
                {"m": msgpack.packb(message)},
                trim_strategy=PureToken.MAXLEN,
                threshold=CONTROL_BACKLOG,
                trim_operator=PureToken.APPROXIMATELY,
            )
        )

    async def end(self, room_id: str, reason: str) -> bool:
        """End a room wherever it lives; False if the directory has no such room."""
        host = self.server.rooms.get(room_id)
        if host is not None and not host.stopped:
            host.request_end(reason)
            return True
        entry = await self.directory.get(room_id)
        if entry is None or entry.status is RoomStatus.ENDED:
            return False
        await self.directory.update(room_id, end_requested=reason[:200])
        await self._nudge(entry.owner or entry.node, {"end": room_id})
        return True

    async def locate(self, room_id: str, role: Role) -> str | None:
        """Where a client of `role` should connect for `room_id`: a WebSocket URL, or
        None when the directory has no such room. Waits (bounded) while it moves."""
        if role is Role.SPECTATOR:
            relays = await self.registry.live(NodeKind.RELAY)
            if relays:
                return min(relays, key=lambda r: r.load).ws
        with trio.move_on_after(LOCATE_SECONDS):
            while True:
                entry = await self.directory.get(room_id)
                if entry is None or entry.status is RoomStatus.ENDED:
                    return None
                nodes = {n.id: n for n in await self.registry.live(NodeKind.NODE)}
                lease = await self.valkey.call(self.valkey.client.get(Keys.room_lease(room_id)))
                owner = lease.decode().split("|")[0] if lease else ""
                if owner in nodes:
                    return nodes[owner].ws
                await trio.sleep(0.2)  # placing, or between an owner and its successor
        raise RoomRefused("room_unavailable", "this room is moving to another node; try again")

    async def room_info(self, room_id: str) -> dict[str, Any] | None:
        host = self.server.rooms.get(room_id)
        lease = self.leases.get(room_id)
        if host is not None and not host.stopped and lease is not None:
            return {**host.info(), "node": self.node_id, "epoch": lease.epoch}
        entry = await self.directory.get(room_id)
        return None if entry is None else self.entry_info(entry)

    @staticmethod
    def entry_info(entry: RoomEntry) -> dict[str, Any]:
        return {
            "id": entry.id,
            "title": entry.title,
            "status": entry.status.value,
            "scenario": entry.case,
            "node": entry.owner or entry.node,
            "epoch": entry.epoch,
            "created_at": entry.created_at,
            "session": entry.session or None,
        }

    # -- control messages and the sweep -------------------------------------------------
    async def _listen_for_control(self) -> None:
        """Act on nudges from other nodes as they come (the sweep catches any missed)."""
        last = "$"
        while True:
            try:
                found = await self.valkey.call(
                    self.valkey.client.xread(
                        {Keys.control(self.node_id): last}, count=16, block=CONTROL_WAIT_MS
                    )
                )
            except ValkeyUnavailable:
                await trio.sleep(SWEEP_SECONDS)
                continue
            for entries in (found or {}).values():
                for entry in entries:
                    last = text(entry.identifier)
                    try:
                        await self._on_control(msgpack.unpackb(entry.field_values[b"m"], raw=False))
                    except ValkeyUnavailable:
                        pass  # the sweep does what this nudge asked
                    except Exception as exc:  # one bad nudge must not stop the node
                        report_fault(f"control message {last}", exc)

    async def _on_control(self, message: dict[str, str]) -> None:
        if (room_id := message.get("open")) is not None:
            self._start(self._open_placed, room_id)
        elif (room_id := message.get("end")) is not None:
            host = self.server.rooms.get(room_id)
            entry = await self.directory.get(room_id)
            if host is not None and entry is not None and entry.end_requested:
                host.request_end(entry.end_requested)

    def _start(self, opener: Callable[[str], Any], room_id: str) -> None:
        """Open or take over a room in the background, once at a time per room."""
        if room_id in self._opening or room_id in self.server.rooms or self._nursery is None:
            return
        self._opening.add(room_id)

        async def run() -> None:
            try:
                await opener(room_id)
            except (ValkeyUnavailable, RoomRefused) as exc:
                log.warning("cluster: room %s not opened here: %s", room_id, exc)
            finally:
                self._opening.discard(room_id)

        self._nursery.start_soon(run)

    async def _sweep_forever(self) -> None:
        while True:
            await trio.sleep(SWEEP_SECONDS)
            self._cpu_rate = self._cpu.read()
            try:
                await self._sweep()
            except ValkeyUnavailable:
                continue

    async def _sweep(self) -> None:
        """Open rooms placed here; take over rooms nobody owns; keep entries current."""
        nodes = await self.registry.live(NodeKind.NODE)
        self.node_urls = [n.ws for n in nodes]
        for host in self.server.rooms.values():
            if not host.stopped:
                host.set_peers(self.node_urls)
        if self.draining:
            return
        alive = {n.id for n in nodes}
        ranked = sorted((n for n in nodes if not n.draining), key=lambda n: n.load)
        rank = next((i for i, n in enumerate(ranked) if n.id == self.node_id), len(ranked))
        entries = await self.directory.all()
        listed = {e.id: e for e in entries}
        for room_id, mine in list(self.entries.items()):
            found = listed.get(room_id)
            stale = found is None or (found.status, found.owner) != (mine.status, mine.owner)
            if stale and room_id in self.leases:
                await self.directory.put(mine)  # lost (Valkey restarted empty) or unwritten
        for entry in entries:
            if entry.id in self.server.rooms:
                await self._refresh(entry)
            elif entry.status is RoomStatus.PLACING:
                if entry.node == self.node_id:
                    self._start(self._open_placed, entry.id)
                elif entry.node not in alive and rank == 0:
                    await self.directory.update(entry.id, node=self.node_id)
                    self._start(self._open_placed, entry.id)
            elif entry.status is RoomStatus.RUNNING:
                lease = await self.valkey.call(self.valkey.client.get(Keys.room_lease(entry.id)))
                if lease is None:
                    self._start(self._delayed_takeover(rank), entry.id)

    async def _refresh(self, entry: RoomEntry) -> None:
        """Act on what others wrote in our room's entry (an end asked through any node)."""
        host = self.server.rooms[entry.id]
        if entry.end_requested and not host.ended:
            host.request_end(entry.end_requested)

    def _delayed_takeover(self, rank: int) -> Callable[[str], Any]:
        async def takeover(room_id: str) -> None:
            await trio.sleep(rank * TAKEOVER_STAGGER_SECONDS)
            await self._take_over(room_id)

        return takeover

    # -- opening, taking over, handing over ---------------------------------------------
    async def _open_placed(self, room_id: str) -> None:
        """Open a room the directory placed on this node."""
        entry = await self.directory.get(room_id)
        if entry is None or entry.status is not RoomStatus.PLACING:
            return
        lease = await RoomLease.claim(self.valkey, room_id, self.node_id)
        if lease is None:
            return  # another node opened it first
        try:
            host = await self.server.prepare_room(
                entry.title, entry.case, entry.seed, room_id, backlog=True
            )
        except RoomRefused as refused:
            await lease.release()
            await self.directory.update(
                room_id, status=RoomStatus.ENDED.value, end_reason=refused.message
            )
            raise
        tee = host.room.recorder
        assert isinstance(tee, TeeRecorder)
        _, start = tee.pending[0]
        self.adopt(host, lease, tee)
        session = host.writer.session_id if host.writer is not None else ""
        running = entry.model_copy(
            update={
                "status": RoomStatus.RUNNING,
                "owner": self.node_id,
                "epoch": lease.epoch,
                "session": session,
                "start": json.dumps(start.data),
            }
        )
        self.entries[room_id] = running
        self.server.launch(host)
        await self.directory.put(running)  # if Valkey fails now, the next sweep writes it

    async def _take_over(self, room_id: str) -> None:
        """Claim a room whose owner's lease expired and carry it on from its backlog."""
        entry = await self.directory.get(room_id)
        if entry is None or entry.status is not RoomStatus.RUNNING or self.draining:
            return
        lease = await RoomLease.claim(self.valkey, room_id, self.node_id)
        if lease is None:
            return  # alive after all, or another node was quicker
        log.info("cluster: taking over room %s (epoch %d)", room_id, lease.epoch)
        try:
            backlog = await read_backlog(self.valkey, room_id)
            restored = rebuild(entry, backlog, self.server.cases.make_scenario)
            host = await self.server.resume_room(restored, entry)
        except RoomRefused as refused:
            log.error("cluster: room %s cannot be taken over: %s", room_id, refused.message)
            await self.directory.update(
                room_id, status=RoomStatus.ENDED.value, end_reason=refused.message
            )
            await self.directory.forget(room_id)
            await lease.release()
            return
        try:
            sessions = await self.valkey.call(
                self.valkey.client.hgetall(Keys.room_sessions(room_id))
            )
        except ValkeyUnavailable:
            await self.server.discard(host)  # the lease lapses; a node tries again later
            raise
        host.adopt_sessions({k.decode(): int(v) for k, v in sessions.items()})
        tee = host.room.recorder
        assert isinstance(tee, TeeRecorder)
        self.adopt(host, lease, tee)
        self.entries[room_id] = entry.model_copy(
            update={"owner": self.node_id, "epoch": lease.epoch}
        )
        await self.directory.put(self.entries[room_id])
        self.server.launch(host)

    async def drain(self) -> None:
        """Stop taking rooms and move this node's rooms to others (SIGTERM on a node).

        Each room's last records reach Valkey, its lease is released and its clients are
        told it `moved`; another node takes it over at its next sweep. With no other
        node alive, the rooms end instead.
        """
        self.draining = True
        with contextlib.suppress(ValkeyUnavailable):
            await self.registry.announce()
        others = []
        with contextlib.suppress(ValkeyUnavailable):
            others = [
                n
                for n in await self.registry.live(NodeKind.NODE)
                if n.id != self.node_id and not n.draining
            ]
        hosts = [h for h in self.server.rooms.values() if not h.stopped]
        if not others:
            for host in hosts:
                host.request_end("the server is shutting down")
            return
        for host in hosts:
            self.moving.add(host.room.id)
            host.step_down(
                "moved",
                "this room is moving to another node; reconnecting finds it",
                ws=others[0].ws,
            )
        with trio.move_on_after(DRAIN_SECONDS):
            for host in hosts:
                await host.wait_stopped()
