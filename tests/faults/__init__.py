"""Fault tests: real server processes under attack, watched by honest clients."""
