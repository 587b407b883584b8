"""Sans-I/O state sync: wire codec, case state and op log, poses, deltas, views, checksums.

Nothing here imports trio, asyncio or sockets: given inputs and a tick it produces
bytes, so the same code serves the server, the Python client, tests and replays.
"""
