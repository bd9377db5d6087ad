"""Reusable test helpers shared by the broker, relay and anti-cheat suites."""

__all__: list[str] = []
