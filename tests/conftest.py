"""Shared pytest fixtures."""

pytest_plugins = ["broker", "pgserver"]
