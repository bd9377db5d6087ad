"""Which partition a key lands in.

The rule is ``crc32c(key as UTF-8) mod partitions``: CRC32C (Castagnoli) is
available in every language we may add an SDK in, is hardware-accelerated,
and is already what guards every record batch. One match id always maps to
the same partition, so a match is totally ordered. Changing a topic's
partition count moves keys; gamebus never does it on its own.

    >>> partition_for_key("match-42", 8)
    2
"""

from __future__ import annotations

from crc32c import crc32c

from gamebus.errors import ConfigError

__all__ = ["partition_for_key"]


def partition_for_key(key: str | bytes, partitions: int) -> int:
    """The partition in ``range(partitions)`` for ``key``."""
    if partitions < 1:
        raise ConfigError(f"a topic needs at least one partition, not {partitions}")
    data = key.encode() if isinstance(key, str) else key
    return int(crc32c(data)) % partitions
