"""A server with media for the browser media test: the demo room, a media worker, and
the signalling glue between them (rtc messages relayed to `MediaSupervisor.signal`,
worker events sent to the room's clients).

The server itself does not wire media yet; this glue follows docs/media.md and stands
in for that wiring in the test only. A member whose name starts with "Presenter" gets
the presenter role (the room has no way to grant it yet).

    python -m tests.web.media_server --port P --data-dir D
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import trio

from netcode.codec import encode
from server.app import Server
from server.config import Settings
from server.media_supervisor import MediaConfig, MediaSupervisor
from server.room_host import Link, RoomHost


def media_role(link: Link) -> str:
    return "presenter" if link.member.name.startswith("Presenter") else link.member.role.value


async def main(port: int, data_dir: Path) -> None:
    server = Server(Settings(host="127.0.0.1", port=port, data_dir=data_dir))

    async def on_event(room_id: str, member_id: str | None, message: dict[str, Any]) -> None:
        host = server.rooms.get(room_id)
        if host is None:
            return
        for link in list(host.links.values()):
            if member_id is None or str(link.member.id) == member_id:
                link.sock.send(encode({**message, "t": "rtc"}))

    supervisor = MediaSupervisor(
        MediaConfig(data_dir=data_dir / "media", ice_host_addresses=["127.0.0.1"]), on_event
    )

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)

        async def relay(host: RoomHost, link: Link, message: dict[str, Any]) -> None:
            replies = await supervisor.signal(
                host.room.id, str(link.member.id), media_role(link), message
            )
            for reply in replies:
                link.sock.send(encode({**reply, "t": "rtc"}))

        def wire(ready: Server) -> None:
            for host in ready.rooms.values():
                host.rtc_handler = lambda host, link, msg: nursery.start_soon(
                    relay, host, link, {k: v for k, v in msg.model_dump().items() if k != "t"}
                )
            print("ready", flush=True)

        await server.run(demo=True, on_ready=wire)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    trio.run(main, args.port, args.data_dir)
