"""One decoded record: the unit the relay filters, conflates and splices.

The relay decodes every bus record once and keeps both forms: ``event`` to
filter and conflate on, ``raw`` (the stored msgpack bytes) to splice into
msgpack frames without encoding again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Record"]


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    raw: bytes
    event: dict[str, Any]

    @property
    def is_position(self) -> bool:
        return self.event.get("type") == "pos"

    @property
    def ts(self) -> int:
        ts = self.event.get("ts", 0)
        return ts if isinstance(ts, int) else 0
