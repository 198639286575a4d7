"""Messages between our processes: pickles with Arrow buffers out of band, framed."""

from __future__ import annotations

import io
import mmap
import os
import pickle
import socket
import threading
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pytest

from pipeline.messages import (
    SHARED_MEMORY,
    Piece,
    SharedSender,
    pickled,
    read_message,
    receive_shared,
    send_message,
    send_shared,
    unpickle,
)

shared_memory_only = pytest.mark.skipif(
    not SHARED_MEMORY, reason="memory files and descriptor passing are Linux-only"
)


def framed(obj: object) -> bytes:
    stream = io.BytesIO()
    send_message(stream, b"B", *pickled(obj))
    return stream.getvalue()


def test_tables_come_back_equal_with_aligned_buffers_that_view_the_message() -> None:
    table = pa.table(
        {
            "n": pa.array([1, None, 3], pa.int64()),
            "s": ["a", "bé", None],
            "x": [0.5, 1.5, None],
            "t": pa.array([1, 2, 3], pa.timestamp("us", tz="UTC")),
        }
    )
    obj = {"tables": [table, table.slice(1)], "count": 7}
    message = read_message(io.BytesIO(framed(obj) + framed("next")))
    assert message is not None and message[0] == b"B"
    back = unpickle(message[1])
    assert back["count"] == 7
    assert [t.equals(e) for t, e in zip(back["tables"], obj["tables"], strict=True)] == [True] * 2
    for column in back["tables"][0].columns:
        for buffer in column.chunk(0).buffers():
            if buffer is not None:
                assert buffer.address % 8 == 0  # int64, float64 and offsets read aligned
    # Not copied out: the Arrow buffers live inside the received message.
    body = memoryview(message[1])
    start = pa.py_buffer(body).address
    data = back["tables"][0].column("s").chunk(0).buffers()[2]
    assert start <= data.address < start + len(body)


def test_plain_objects_and_an_in_band_pickle_are_not_confused() -> None:
    message = read_message(io.BytesIO(framed(["plain", 1])))
    assert message is not None and unpickle(message[1]) == ["plain", 1]
    for not_ours in (pickle.dumps(["in", "band"]), b"", b"\x01" * 7):
        with pytest.raises(ValueError, match="not a pickle from pickled"):
            unpickle(not_ours)


def test_a_message_cut_short_is_an_eof_error() -> None:
    whole = framed(pa.table({"a": list(range(1000))}))
    with pytest.raises(EOFError):
        read_message(io.BytesIO(whole[:-10]))


@shared_memory_only
def test_a_body_handed_over_in_shared_memory_comes_back_mapped_not_copied() -> None:
    table = pa.table({"n": list(range(10_000)), "s": [f"v{i}" for i in range(10_000)]})
    ours, theirs = socket.socketpair()
    with ours, theirs:
        size = send_shared(theirs, pickled({"t": table}))
        body = receive_shared(ours, size)
    back = unpickle(body)
    assert back["t"].equals(table)
    start = pa.py_buffer(body).address
    data = back["t"].column("s").chunk(0).buffers()[2]
    assert start <= data.address < start + size  # a view of the mapping
    with pytest.raises(TypeError):
        body[0:1] = b"x"  # mapped read-only: the sender's memory cannot be changed here


@shared_memory_only
def test_a_shared_body_of_the_wrong_size_or_a_vanished_sender_is_an_error() -> None:
    ours, theirs = socket.socketpair()
    with ours:
        with theirs:
            size = send_shared(theirs, [b"0123456789"])
        with pytest.raises(ValueError, match="announced 11 bytes"):
            receive_shared(ours, size + 1)
        with pytest.raises(EOFError, match="went away"):
            receive_shared(ours, size)


@shared_memory_only
def test_a_shared_sender_waits_until_the_receiver_has_taken_what_it_sent() -> None:
    # Bodies in flight are mapped by no process; without this wait a fast sender piled
    # them up without bound and out of every RSS figure.
    ours, theirs = socket.socketpair()
    with ours, theirs:
        sender = SharedSender(theirs, limit=2)
        sizes = [sender.send([b"first"]), sender.send([b"second"])]
        sent_third = threading.Event()

        def third() -> None:
            sender.send([b"third"])
            sent_third.set()

        thread = threading.Thread(target=third, daemon=True)
        thread.start()
        assert not sent_third.wait(0.3), "sent a third body while two were not taken"
        assert bytes(receive_shared(ours, sizes[0])) == b"first"
        assert sent_third.wait(5), "still waiting after the receiver took one"
        thread.join(5)
        assert bytes(receive_shared(ours, sizes[1])) == b"second"
        assert bytes(receive_shared(ours, len(b"third"))) == b"third"


@shared_memory_only
def test_a_shared_sender_whose_receiver_went_away_stops_with_a_connection_error() -> None:
    ours, theirs = socket.socketpair()
    with theirs:
        sender = SharedSender(theirs, limit=1)
        sender.send([b"taken by nobody"])
        ours.close()
        with pytest.raises(ConnectionError):  # reset (a body left unread) or broken pipe
            sender.send([b"never sent"])


def handed_over(sender: SharedSender, ours: socket.socket, body: Sequence[Piece]) -> mmap.mmap:
    """`body` sent by `sender` and taken on the other end of its socket."""
    return receive_shared(ours, sender.send(body))


def passed_on(sender: SharedSender, ours: socket.socket, value: object) -> Any:
    """`value` pickled, sent by `sender`, taken and unpickled on the other end."""
    return unpickle(handed_over(sender, ours, pickled(value)))


@pytest.fixture
def memory_files_created(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The memory files created during the test, in order (their descriptors)."""
    created: list[int] = []
    real = os.memfd_create

    def counting(name: str, flags: int = os.MFD_CLOEXEC) -> int:
        fd = real(name, flags)
        created.append(fd)
        return fd

    monkeypatch.setattr(os, "memfd_create", counting)
    return created


@shared_memory_only
def test_a_shared_sender_writes_into_the_same_memory_file_once_the_receiver_lets_go(
    memory_files_created: list[int],
) -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        sender = SharedSender(theirs, limit=1, keep=3)
        # Longer and shorter bodies in turn: a reused file is cut to each one's size.
        for rows in (5_000, 50, 20_000, 10, 5_000):
            table = pa.table({"n": list(range(rows)), "s": [f"v{i}" for i in range(rows)]})
            back = passed_on(sender, ours, {"t": table})
            assert back["t"].equals(table)
            del back  # the last view of the body: the receiver lets go of the file
        sender.close()
    assert len(memory_files_created) == 1


@shared_memory_only
def test_a_body_still_in_use_is_never_overwritten_by_the_next(
    memory_files_created: list[int],
) -> None:
    first = pa.table({"s": ["first"] * 1000})
    second = pa.table({"s": ["second"] * 1000})
    third = pa.table({"s": ["third"] * 1000})
    ours, theirs = socket.socketpair()
    with ours, theirs:
        sender = SharedSender(theirs, limit=1, keep=1)
        held = passed_on(sender, ours, first)
        # The one kept file holds `held`: the next body goes into a file of its own.
        got_second = passed_on(sender, ours, second)
        assert len(memory_files_created) == 2
        assert held.equals(first) and got_second.equals(second)
        del held  # now the kept file is let go of, and written again
        got_third = passed_on(sender, ours, third)
        assert len(memory_files_created) == 2
        assert got_second.equals(second) and got_third.equals(third)
        sender.close()


@shared_memory_only
def test_a_shared_sender_ignores_a_repeated_release_and_one_of_no_file(
    memory_files_created: list[int],
) -> None:
    # Counting a file free twice would put two bodies into it, the first still read.
    ours, theirs = socket.socketpair()
    with ours, theirs:
        sender = SharedSender(theirs, limit=1, keep=2)
        first = handed_over(sender, ours, [b"first"])
        del first  # the release of file 0 ...
        ours.send(bytes([0x80 | 0, 0x80 | 7]))  # ... repeated, and one of a file never kept
        second = handed_over(sender, ours, [b"second"])  # into file 0 again
        third = handed_over(sender, ours, [b"third"])  # into a new one
        assert (bytes(second), bytes(third)) == (b"second", b"third")
        assert len(memory_files_created) == 2
        sender.close()
