"""The benchmarks' hand-rolled WebSocket framing against the websockets library's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from loadtests.bench.wsframes import BINARY, PING, client_frame, split_frames

_payloads = st.binary(max_size=70_000)


def _server_frame(opcode: int, payload: bytes) -> bytes:
    return Frame(Opcode(opcode), payload).serialize(mask=False, extensions=[])


@given(st.lists(st.tuples(st.sampled_from([BINARY, PING]), st.binary(max_size=300)), max_size=8),
       st.sampled_from([0, 125, 126, 65_535, 65_536]), st.data())
def test_split_frames_returns_whole_frames_only(small, big_size, data) -> None:
    frames = [*small, (BINARY, bytes(big_size))]
    wire = b"".join(_server_frame(op, p) for op, p in frames)
    cut = data.draw(st.integers(0, len(wire)))
    got, consumed = split_frames(wire[:cut])
    complete = []
    end = 0
    for op, p in frames:
        size = len(_server_frame(op, p))
        if end + size > cut:
            break
        complete.append((op, p))
        end += size
    assert consumed == end
    assert [(op, wire[a:b]) for op, a, b in got] == complete


@given(st.sampled_from([BINARY, PING]), _payloads)
def test_client_frame_is_what_a_server_parses(opcode, payload) -> None:
    reader = StreamReader()
    reader.feed_data(client_frame(opcode, payload))
    parser = Frame.parse(reader.read_exact, mask=True)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    assert frame.opcode == Opcode(opcode) and frame.data == payload
