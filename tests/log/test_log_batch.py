"""Record batches: exact bytes, CRC checks, and garbage never raising anything but CorruptBatch."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from gamebus.errors import CorruptBatch
from gamebus.log.batch import (
    HEADER_BYTES,
    RecordBatch,
    decode_batches,
    decode_records,
    encode_batch,
    encode_records,
    read_header,
    split_batches,
)

PAYLOAD = encode_records([b"a", b"bc"])


def sample() -> bytes:
    return encode_batch(
        PAYLOAD,
        base_offset=42,
        count=2,
        first_ts=1000,
        max_ts=1005,
        producer_id=7,
        sequence=3,
        epoch=2,
    )


def test_header_is_54_bytes_with_crc_over_everything_after_it():
    data = sample()
    assert HEADER_BYTES == 54
    assert len(data) == 54 + len(PAYLOAD)
    assert data[:2] == b"\xb7\x01"
    assert struct.unpack(">I", data[2:6])[0] == crc32c(data[6:])
    assert struct.unpack(">IqiqqqiI", data[6:54]) == (len(PAYLOAD), 42, 2, 1000, 1005, 7, 3, 2)
    assert data[54:] == PAYLOAD


def test_payload_is_a_msgpack_array_of_bin():
    assert encode_records([b"a", b"bc"]) == b"\x92\xc4\x01a\xc4\x02bc"
    assert decode_records(b"\x92\xc4\x01a\xc4\x02bc") == [b"a", b"bc"]


def test_decode_round_trips_every_field():
    batch = RecordBatch.decode(sample())
    assert batch == RecordBatch(42, 2, 1000, 1005, 7, 3, 2, PAYLOAD)
    assert batch.next_offset == 44
    assert batch.records() == [b"a", b"bc"]
    assert batch.encode() == sample()


def test_decode_rejects_a_flipped_bit_anywhere():
    data = sample()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x10
        with pytest.raises(CorruptBatch):
            RecordBatch.decode(bytes(bad))


def test_decode_rejects_trailing_and_missing_bytes():
    with pytest.raises(CorruptBatch, match="length field"):
        RecordBatch.decode(sample() + b"\x00")
    with pytest.raises(CorruptBatch, match="length field"):
        RecordBatch.decode(sample()[:-1])
    with pytest.raises(CorruptBatch, match="truncated header"):
        RecordBatch.decode(sample()[:53])


def test_split_batches_frames_a_concatenation_and_reports_a_torn_tail_position():
    a, b = sample(), encode_batch(b"\x91\xc4\x00", base_offset=44, count=1, first_ts=1, max_ts=1)
    assert [(pos, h.base_offset) for pos, h in split_batches(a + b)] == [(0, 42), (len(a), 44)]
    with pytest.raises(CorruptBatch) as info:
        list(split_batches(a + b[:-1]))
    assert info.value.position == len(a)


def test_records_count_must_match_the_header():
    batch = RecordBatch(0, 3, 0, 0, -1, -1, 0, encode_records([b"x"]))
    with pytest.raises(CorruptBatch, match="3 records"):
        batch.records()


def test_decode_batches_decodes_what_a_read_returns():
    assert [b.base_offset for b in decode_batches([sample(), sample()])] == [42, 42]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_raises_only_corrupt_batch(data: bytes):
    for decode in (
        RecordBatch.decode,
        lambda d: list(split_batches(d)),
        decode_records,
        read_header,
    ):
        try:
            decode(data)
        except CorruptBatch:
            pass


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.integers(0, 10_000), st.integers(0, 255))
def test_mutated_batches_raise_only_corrupt_batch(payload: bytes, where: int, value: int):
    data = bytearray(encode_batch(payload, base_offset=5, count=1, first_ts=1, max_ts=2))
    data[where % len(data)] = value
    try:
        batch = RecordBatch.decode(bytes(data))
    except CorruptBatch:
        return
    try:
        batch.records()
    except CorruptBatch:
        pass


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=50), max_size=20))
def test_records_round_trip(records: list[bytes]):
    assert decode_records(encode_records(records)) == records
