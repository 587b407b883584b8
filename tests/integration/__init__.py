"""Cross-package tests through the real server."""
