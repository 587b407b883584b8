"""The Python client for Grand Rounds rooms: `connect(ws_url, token)` gives a `RoomClient`."""

from clients.python.client import Reply, RoomClient, ServerRefused, connect, still_pose, yaw_pose

__all__ = ["Reply", "RoomClient", "ServerRefused", "connect", "still_pose", "yaw_pose"]
