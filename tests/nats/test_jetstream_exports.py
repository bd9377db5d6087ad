"""The JetStream engine's public names, pinned."""

from __future__ import annotations

import gamebus.engines.jetstream as jetstream
from gamebus.engines.jetstream import bus, groups, naming, reader, subscription, translate


def test_package_exports_are_pinned() -> None:
    assert sorted(jetstream.__all__) == [
        "JetStreamBus",
        "JetStreamMembership",
        "JetStreamOptions",
        "JetStreamSubscription",
        "TopicState",
        "assign",
        "connect_jetstream",
        "parse_url",
    ]


def test_every_module_declares_all_and_exports_exist() -> None:
    for module in (jetstream, bus, groups, naming, reader, subscription, translate):
        assert module.__all__, module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
