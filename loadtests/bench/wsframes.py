"""WebSocket framing for the benchmarks' lean clients (RFC 6455, client side).

The fan-out and end-to-end benchmarks hold hundreds of connections per
process and must measure the relay, not their own framing, so their
clients speak WebSocket by hand over an :class:`asyncio.Protocol`. Both
need the same two pieces, kept here once: splitting the unmasked frames a
server sends out of a receive buffer, and building a masked client frame.
"""

from __future__ import annotations

__all__ = ["client_frame", "split_frames"]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10


def split_frames(buf: bytes | bytearray) -> tuple[list[tuple[int, int, int]], int]:
    """The complete server frames at the start of ``buf`` and how many bytes they take.

    Returns ``([(opcode, payload_start, payload_end), ...], consumed)``; a
    frame cut short at the end of ``buf`` is left for the next read. Server
    frames are never masked; the relay never fragments, so ``FIN`` is not
    checked.

    >>> split_frames(b"\\x82\\x02hi\\x89\\x00\\x82\\x05ab")
    ([(2, 2, 4), (9, 6, 6)], 6)
    """
    frames: list[tuple[int, int, int]] = []
    pos, size = 0, len(buf)
    while size - pos >= 2:
        opcode, length = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
        head = 2
        if length == 126:
            if size - pos < 4:
                break
            length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            if size - pos < 10:
                break
            length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
        if size - pos < head + length:
            break
        start = pos + head
        pos = start + length
        frames.append((opcode, start, pos))
    return frames, pos


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame; an all-zero mask leaves the payload as it is."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload
