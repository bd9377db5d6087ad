"""The public names of the SDK are pinned: changing them is a decision, not an accident."""

from __future__ import annotations

import gamebus
import gamebus.client
import gamebus.engines.embedded
import gamebus.protocol


def test_the_package_exports_the_sdk() -> None:
    assert set(gamebus.__all__) >= {
        "Batch", "Consumer", "GamebusError", "InvalidEvent", "Message", "Position",
        "ProduceResult", "Producer", "connect", "errors", "events", "partition_for_key",
    }  # fmt: skip
    for name in gamebus.__all__:
        assert hasattr(gamebus, name), name


def test_the_sdk_modules_pin_their_exports() -> None:
    assert gamebus.client.__all__ == [
        "MAX_IN_FLIGHT_PER_PARTITION", "Consumer", "Message", "Producer", "connect",
    ]  # fmt: skip
    assert "connect_embedded" in gamebus.engines.embedded.__all__
    assert {"FrameReader", "encode_frame", "PROTOCOL_VERSION"} <= set(gamebus.protocol.__all__)


def test_embedded_bus_has_every_bus_method() -> None:
    from gamebus.engines.base import Bus

    wanted = {n for n in dir(Bus) if not n.startswith("_")} - {"url"}
    assert wanted <= set(dir(gamebus.engines.embedded.EmbeddedBus))
