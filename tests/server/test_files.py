"""Files are served only when they are regular files inside their folder, reached
without following a symbolic link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.files import app_file, open_regular_file, read_regular_file


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("bb")
    (root / ".hidden").write_text("h")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (root / "link.txt").symlink_to(secret)
    (root / "linked").symlink_to(tmp_path)
    os.mkfifo(root / "pipe")
    return root


def test_regular_files_inside_the_folder_are_served(folder: Path) -> None:
    assert read_regular_file(folder, "a.txt") == b"a"
    assert read_regular_file(folder, "sub/b.txt") == b"bb"
    opened = open_regular_file(folder, "sub/b.txt")
    assert opened is not None and opened.size == 2
    opened.close()


@pytest.mark.parametrize(
    "name",
    [
        "link.txt",  # a link to a file outside
        "linked/secret.txt",  # through a linked folder
        "pipe",  # a FIFO: opening it must not block either
        "sub",  # a folder
        ".hidden",
        "../secret.txt",
        "sub/../a.txt",
        "./a.txt",
        "sub//b.txt",
        "missing.txt",
        "x" * 300,
        "é" * 200,  # under 255 characters, over 255 bytes
    ],
)
def test_anything_else_is_not_served(folder: Path, name: str) -> None:
    assert open_regular_file(folder, name) is None


def test_app_pages_carry_a_policy_with_the_hash_of_their_import_map() -> None:
    page = app_file("/")
    assert page is not None and page.policy is not None
    assert page.content_type == "text/html; charset=utf-8"
    assert "frame-ancestors 'none'" in page.policy and "'sha256-" in page.policy
    script = app_file("/js/app.js")
    assert script is not None and script.policy is None
    assert app_file("/../pyproject.toml") is None
