"""The hand-written value classes behave as the dataclasses they replaced (``_values``).

Frozen ones refuse assignment, compare and hash by value, pickle, and copy
with ``replace``; mutable ones compare by value and are unhashable; the
ones that own a lock or descriptors are equal only to themselves. Each
class keeps its constructor: positional or keyword, the same defaults.
"""

from __future__ import annotations

import pickle
import threading
import time

import pytest

from getfile_core import protocol
from getfile_core.address import Target
from getfile_core.client.destination import Destination
from getfile_core.client.mirrors import Head, Source
from getfile_core.client.plan import Piece
from getfile_core.client.ranges import Record
from getfile_core.client.state import FetchResult, Options, RetryNotice, TransferState
from getfile_core.errors import InterruptedError_
from getfile_core.protocol import Request, Response, Status, Verb
from tests.support.waits import PATIENCE, wait_until_sync

FROZEN = [
    Target("h", 1, b"p"),
    Request(Verb.GET, b"a", offset=5, version=2, length=7, keep=True),
    Response(Status.OK, size=10, digest="blake3:" + "0" * 64),
    protocol.LegacyRequest(b"a"),
    protocol.AuthProof(b"mac"),
    protocol.Data(b"bytes"),
    protocol.HashProgress(3),
    protocol.Trailer(digest="blake3:" + "1" * 64),
    protocol.EndOfMessage(),
    protocol.ConnectionClosed(),
    protocol.Entry(b"n", "file", 1, 2),
    RetryNotice(1, 10, 2.0, "reset"),
    FetchResult("/x", 1, None, True, 0, 0.5),
    Head(1, None, None, 2),
    Record(7, None, ((0, 7),)),
]


@pytest.mark.parametrize("value", FROZEN, ids=lambda v: type(v).__name__)
def test_frozen_values_refuse_changes(value: object) -> None:
    for name in type(value)._fields or ("anything",):  # type: ignore[attr-defined]
        with pytest.raises(AttributeError):
            setattr(value, name, 1)
        with pytest.raises(AttributeError):
            delattr(value, name)


@pytest.mark.parametrize("value", FROZEN, ids=lambda v: type(v).__name__)
def test_frozen_values_compare_hash_and_pickle_by_value(value: object) -> None:
    copy = pickle.loads(pickle.dumps(value))
    assert copy == value and copy is not value
    if not isinstance(value, Response):  # its ``extra`` dict is unhashable, as before
        assert hash(copy) == hash(value)
    assert value != object()


def test_replace_copies_with_changes_and_refuses_unknown_fields() -> None:
    request = Request(Verb.GET, b"a", offset=5)
    changed = request.replace(version=2, keep=True)
    assert (changed.version, changed.keep, changed.offset, request.version) == (2, True, 5, 1)
    with pytest.raises(TypeError):
        request.replace(colour="red")
    options = Options(retries=3)
    assert options.replace(segments=4) == Options(retries=3, segments=4)
    assert options.segments == 1


def test_equality_needs_the_same_class_and_every_field() -> None:
    assert Target("h", 1, b"p") == Target(host="h", port=1, path=b"p", tls=False)
    assert Target("h", 1, b"p") != Target("h", 1, b"p", True)
    assert protocol.EndOfMessage() != protocol.ConnectionClosed()
    assert Piece(0, 10, 0) == Piece(0, 10, 0) != Piece(0, 10, 1)


def test_repr_shows_every_field_as_a_dataclass_did() -> None:
    assert repr(Target("h", 1, b"p")) == "Target(host='h', port=1, path=b'p', tls=False)"
    assert repr(protocol.EndOfMessage()) == "EndOfMessage()"
    assert "retries=10" in repr(Options())


def test_mutable_values_are_unhashable_and_keep_their_defaults() -> None:
    options = Options()
    with pytest.raises(TypeError):
        hash(options)
    assert (options.retries, options.segments, options.mirrors, options.legacy) == (10, 1, (), None)
    options.retries = 0  # mutable, as the dataclass was
    assert options != Options()
    piece = Piece(0, 10, 0)
    piece.pos = 5
    assert piece.left == 5


def test_responses_get_their_own_extra_dict() -> None:
    first, second = Response(Status.OK), Response(Status.OK)
    assert first.extra == {} and first.extra is not second.extra


def test_owners_of_locks_and_descriptors_are_equal_only_to_themselves() -> None:
    for make in (
        TransferState,
        lambda: Destination("/tmp", "a"),
        lambda: Source(0, Target("h", 1, b"p")),
    ):
        one = make()
        assert one == one and one != make()
        assert len({one, one}) == 1


def test_a_transfer_state_wait_is_ended_from_another_thread() -> None:
    """The condition waits sleep on is made by the first wait; a cancel still reaches it."""
    state = TransferState()
    assert state._wake is None  # nothing waited yet: threading need not be imported

    def cancel_once_waiting() -> None:
        wait_until_sync(lambda: state._wake is not None, "the backoff began waiting")
        state.cancel()  # takes the lock, so only once the waiter sleeps on the condition

    helper = threading.Thread(target=cancel_once_waiting)
    helper.start()
    began = time.monotonic()
    with pytest.raises(InterruptedError_, match="cancelled"):
        state.backoff(600)  # only the cancel can end it before the test's timeout
    helper.join(PATIENCE)
    assert not helper.is_alive()
    assert time.monotonic() - began < 600
