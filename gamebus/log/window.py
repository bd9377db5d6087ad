"""The memory window: the newest encoded batches of a partition, by offset.

Reads inside the window never touch disk. Parallel lists (base offsets,
headers, payloads) with a moving head make append O(1) and lookup a bisect;
header and payload are kept apart so an append never copies the payload,
and joined only when read;
evicted slots are compacted in place once they are half the list, so the
list objects keep their identity and the partition can bind their
``append`` methods once.
"""

from __future__ import annotations

from bisect import bisect_right

from gamebus.log.batch import HEADER_BYTES

__all__ = ["MemoryWindow"]


class MemoryWindow:
    """Batch ``i >= head`` is ``headers[i] + payloads[i]`` at ``offsets[i]``, oldest first."""

    __slots__ = ("head", "headers", "nbytes", "offsets", "payloads")

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.headers: list[bytes] = []
        self.payloads: list[bytes] = []
        self.head = 0
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self.offsets) - self.head

    def start(self, default: int) -> int:
        """Base offset of the oldest batch held, ``default`` when empty."""
        return self.offsets[self.head] if self.head < len(self.offsets) else default

    def evict(self, *, max_bytes: int, written_end: int, next_offset: int) -> None:
        """Drop the oldest batches while over ``max_bytes``, but only ones already written."""
        offsets, payloads, head = self.offsets, self.payloads, self.head
        n = len(offsets)
        while self.nbytes > max_bytes and head < n:
            end = offsets[head + 1] if head + 1 < n else next_offset
            if end > written_end:
                break
            self.nbytes -= len(payloads[head]) + HEADER_BYTES
            head += 1
        self._set_head(head)

    def drop_below(self, offset: int) -> None:
        """Forget batches that end at or below ``offset`` (retention moved the log start)."""
        i = bisect_right(self.offsets, offset, lo=self.head) - 1
        # batch i contains or precedes ``offset``; drop the ones before it
        head = self.head
        while head < i:
            self.nbytes -= len(self.payloads[head]) + HEADER_BYTES
            head += 1
        self._set_head(head)

    def _set_head(self, head: int) -> None:
        # Release evicted bytes now, not at the next compaction: a busy
        # partition would otherwise pin up to ~1024 dead batches.
        headers, payloads = self.headers, self.payloads
        for i in range(self.head, min(head, len(payloads))):
            headers[i] = payloads[i] = b""
        if head == len(self.offsets):
            self.clear()
        elif head > 1024 and head * 2 > len(self.offsets):
            del self.offsets[:head]
            del self.headers[:head]
            del self.payloads[:head]
            self.head = 0
        else:
            self.head = head

    def read(self, offset: int, *, max_bytes: int, out: list[bytes], total: int) -> None:
        """Append to ``out`` whole batches from the one containing ``offset``.

        ``total`` is what ``out`` already holds; at least one batch is added
        when ``out`` is empty, then more while the total stays within
        ``max_bytes``.
        """
        offsets, headers, payloads = self.offsets, self.headers, self.payloads
        i = max(bisect_right(offsets, offset, lo=self.head) - 1, self.head)
        n = len(offsets)
        while i < n:
            size = len(payloads[i]) + HEADER_BYTES
            if out and total + size > max_bytes:
                return
            out.append(headers[i] + payloads[i])
            total += size
            i += 1

    def clear(self) -> None:
        self.offsets.clear()
        self.headers.clear()
        self.payloads.clear()
        self.head, self.nbytes = 0, 0
