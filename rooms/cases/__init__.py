"""The synthetic cases that ship with Grand Rounds (YAML package data)."""
