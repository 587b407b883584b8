"""A Python participant for browser tests: joins with `clients.python.connect` in its
own thread (trio) and walks its head and hands along a line until told to stop."""

from __future__ import annotations

import threading

import trio

from clients.python.client import connect, still_pose


class WalkingBot:
    def __init__(self, ws_url: str, token: str) -> None:
        self.ws_url = ws_url
        self.token = token
        self.member: int | None = None
        self.x = 0.0
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: trio.run(self._run), daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> WalkingBot:
        self._thread.start()
        if not self.ready.wait(15):
            raise RuntimeError(f"the bot did not join: {self.error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _run(self) -> None:
        try:
            async with connect(self.ws_url, self.token) as client:
                self.member = client.member
                await client.send_pose(head=still_pose(0.0, 1.6, -1.0))
                self.ready.set()
                step = 0
                while not self._stop.is_set():
                    step += 1
                    self.x = round(((step // 3) % 20) * 0.05 - 0.5, 3)  # back and forth, 5 cm steps
                    await client.send_pose(
                        head=still_pose(self.x, 1.6, -1.0),
                        left=still_pose(self.x - 0.2, 1.1, -0.8),
                        right=still_pose(self.x + 0.2, 1.1, -0.8),
                    )
                    await trio.sleep(0.05)
        except BaseException as exc:  # reported by __enter__ or the test
            self.error = exc
            self.ready.set()
            raise
