"""Files the server hands out: the browser app's and a session's recorded media.

A file is served only when it is a regular file inside its folder, reached without
following a symbolic link (each folder on the way is opened with `O_NOFOLLOW` relative
to the one before, so nothing swapped in meanwhile escapes the folder either) and
without blocking on a FIFO or a device. The app's HTML pages carry a Content Security
Policy allowing exactly what the app uses: its own scripts, styles, media and
WebSocket, and the hashes of its inline import maps.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import os
import re
import stat
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

APP_FOLDER: Final = Path(str(resources.files("clients").joinpath("web")))
MAX_NAME: Final = 255
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
APP_POLICY: Final = (
    "default-src 'self'; script-src 'self' {scripts}; style-src 'self'; "
    "style-src-attr 'unsafe-inline'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""Inline style attributes are allowed (the monitor colours its waveform captions)."""


@dataclass(frozen=True, slots=True)
class OpenFile:
    """A regular file opened for reading, with its size."""

    fd: int
    size: int

    def close(self) -> None:
        os.close(self.fd)


def open_regular_file(folder: Path, relative: str) -> OpenFile | None:
    """Open `folder/relative` for reading if it is a regular file inside `folder` reached
    through no symbolic link and no hidden name; None otherwise (or if it is missing)."""
    parts = relative.split("/")
    if not all(part and not part.startswith(".") and len(part) <= MAX_NAME for part in parts):
        return None
    try:
        directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            os.close(directory)
            directory = inner
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except OSError:  # missing, a link, not a folder, not readable
        return None
    finally:
        os.close(directory)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return None
    return OpenFile(fd, info.st_size)


def read_regular_file(folder: Path, relative: str) -> bytes | None:
    """The bytes of a file `open_regular_file` would open; None if it would not."""
    opened = open_regular_file(folder, relative)
    if opened is None:
        return None
    with os.fdopen(opened.fd, "rb") as file:  # closes the descriptor
        return file.read()


@dataclass(frozen=True, slots=True)
class AppFile:
    body: bytes
    content_type: str
    policy: str | None
    """The Content-Security-Policy of an HTML page; None for other files."""


def app_file(path: str) -> AppFile | None:
    """A file of the browser app (clients/web) for a URL path; None when there is none."""
    relative = path.lstrip("/") or "index.html"
    body = read_regular_file(APP_FOLDER, relative)
    if body is None:
        return None
    content_type = mimetypes.guess_type(relative)[0] or "application/octet-stream"
    if relative.endswith((".js", ".mjs")):
        content_type = "text/javascript"
    policy = None
    if content_type == "text/html":
        content_type = "text/html; charset=utf-8"
        hashes = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
            for script in _INLINE_SCRIPT.findall(body)
        )
        policy = APP_POLICY.format(scripts=hashes)
    return AppFile(body, content_type, policy)
