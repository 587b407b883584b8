"""Room server tests."""
