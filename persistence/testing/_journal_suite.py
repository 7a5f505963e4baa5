"""The journal conformance suite: every rule of the journal protocol, as tests.

One module on purpose (over 500 lines): it is the protocol's rule book, one test per rule, so a
backend author reads and subclasses one class.

Subclass :class:`JournalConformance` in a test module (named ``Test...``) and provide the
``journal`` fixture; provide ``reopen`` too if the backend is durable::

    class TestMyJournal(JournalConformance):
        @pytest_asyncio.fixture
        async def journal(self, tmp_path):
            journal = MyJournal(tmp_path / "j")
            yield journal
            await journal.close()

        @pytest.fixture
        def reopen(self, tmp_path):
            return lambda: MyJournal(tmp_path / "j")

The tests of the read side (orderings, ``events_by_tag``, ``persistence_ids``) run only for
journals implementing :class:`~persistence.journal.ReadJournal`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
import pytest_asyncio

from persistence._errors import (
    JournalClosedError,
    JournalError,
    OwnerEpochFencedError,
    SequenceNrConflictError,
)
from persistence.journal._protocol import (
    MAX_SEQUENCE_NR,
    AtomicWrite,
    Journal,
    PersistentRecord,
    ReadJournal,
    ReplayRow,
    TaggedRecord,
    row_pages,
)

Reopen = Callable[[], Journal]


def record(
    persistence_id: str, sequence_nr: int, *, tags: tuple[str, ...] = (), payload: bytes = b""
) -> PersistentRecord:
    """A record whose fields all depend on its id and number, so mix-ups show."""
    return PersistentRecord(
        persistence_id,
        sequence_nr,
        f"Event{sequence_nr % 3}",
        payload or f"{persistence_id}:{sequence_nr}".encode(),
        f"writer-{persistence_id}",
        1_700_000_000_000 + sequence_nr,
        tags,
    )


def atomic(
    persistence_id: str, low: int, high: int | None = None, *, tags: tuple[str, ...] = ()
) -> AtomicWrite:
    """One atomic write of ``persistence_id``'s events ``low..high`` (inclusive)."""
    top = low if high is None else high
    return AtomicWrite([record(persistence_id, n, tags=tags) for n in range(low, top + 1)])


def fenced(
    persistence_id: str, low: int, high: int | None = None, *, epoch: int | None
) -> AtomicWrite:
    """:func:`atomic` carrying an owner epoch."""
    return atomic(persistence_id, low, high)._replace(owner_epoch=epoch)


EPOCHS_UNSUPPORTED = "does not support owner epochs"
"""What a journal that cannot fence says when it rejects a write carrying an epoch."""


async def _epochs_supported(journal: Journal) -> bool:
    """Whether ``journal`` fences by owner epoch: it stores a write carrying one, or rejects it
    saying it does not support them (and then the epoch tests check just that refusal)."""
    [result] = await journal.write([fenced("probe-epochs", 1, epoch=0)])
    if result is None:
        return True
    assert type(result) is JournalError, result
    assert EPOCHS_UNSUPPORTED in str(result), result
    assert await journal.highest_sequence_nr("probe-epochs") == 0
    return False


def seqs(records: Sequence[PersistentRecord]) -> list[int]:
    return [r.sequence_nr for r in records]


async def collect(pages: AsyncIterator[list[PersistentRecord]]) -> list[PersistentRecord]:
    """All records of a replay, checking that it yields non-empty lists."""
    result: list[PersistentRecord] = []
    async for page in pages:
        assert isinstance(page, list), f"a page must be a list, got {type(page).__name__}"
        assert page, "a replay must not yield empty pages"
        result.extend(page)
    return result


async def collect_rows(pages: AsyncIterator[Sequence[ReplayRow]]) -> list[tuple[int, str, bytes]]:
    """The ``(sequence_nr, manifest, payload)`` of every row of a replay as rows (see
    :func:`~persistence.journal._protocol.row_pages`), checking that pages are not empty."""
    result: list[tuple[int, str, bytes]] = []
    async for page in pages:
        assert page, "a replay must not yield empty pages"
        result.extend((row[0], row[1], row[2]) for row in page)
    return result


def as_rows(records: Sequence[PersistentRecord]) -> list[tuple[int, str, bytes]]:
    return [(r.sequence_nr, r.manifest, r.payload) for r in records]


async def collect_tagged(pages: AsyncIterator[list[TaggedRecord]]) -> list[TaggedRecord]:
    result: list[TaggedRecord] = []
    async for page in pages:
        assert isinstance(page, list), f"a page must be a list, got {type(page).__name__}"
        assert page, "events_by_tag must not yield empty pages"
        result.extend(page)
    return result


async def write_ok(journal: Journal, *writes: AtomicWrite) -> None:
    """Write and assert that every atomic write was stored."""
    assert await journal.write(list(writes)) == [None] * len(writes)


def _read_side(journal: Journal) -> ReadJournal:
    if not isinstance(journal, ReadJournal):
        pytest.skip(f"{type(journal).__name__} does not implement ReadJournal")
    return journal


@asynccontextmanager
async def reopened(reopen: Reopen | None) -> AsyncIterator[Journal]:
    """A new instance over the same storage (the test's journal must be closed first)."""
    if reopen is None:
        pytest.skip("the backend keeps nothing across instances (no reopen fixture)")
    journal = reopen()
    try:
        yield journal
    finally:
        await journal.close()


LONE_SURROGATE = "\udc80"
"""Not valid UTF-8 on its own: no backend can store text holding it."""

CLOSED_MESSAGE = r"\bclosed\b.*\bcreate a new instance\b"
"""What using a closed journal says (as a regex): it is closed, and the fix."""


def _rejected(result: BaseException | None, *named: str) -> Iterator[str]:
    """Problems with ``result`` as the outcome of a malformed atomic write (empty if fine); the
    message must name each of ``named`` (as its repr)."""
    if not isinstance(result, JournalError) or isinstance(result, SequenceNrConflictError):
        yield f"expected a JournalError rejecting the write, got {result!r}"
    for text in named:
        if repr(text) not in str(result):
            yield f"the rejection {str(result)!r} does not name {text!r}"


class JournalConformance:
    """Tests every journal must pass. Provide ``journal`` (and ``reopen`` if durable)."""

    @pytest_asyncio.fixture
    async def journal(self, *args: Any, **kwargs: Any) -> AsyncIterator[Journal]:
        """Override: yield a new, empty journal and close it afterwards."""
        raise pytest.UsageError(
            f"{type(self).__name__} must provide a `journal` fixture yielding a journal"
        )
        yield  # pragma: no cover

    @pytest.fixture
    def reopen(self, *args: Any, **kwargs: Any) -> Reopen | None:
        """Override for durable backends: a factory of new instances over the storage of
        ``journal``. ``None`` skips the durability tests."""
        return None

    # --- write and replay ---------------------------------------------------------------------

    async def test_replay_returns_written_events_with_every_field(self, journal: Journal) -> None:
        written = [
            record("a", 1, tags=("blue", "green")),
            record("a", 2, payload=b"\x00\xff" * 100),
            record("a", 3),
        ]
        await write_ok(journal, AtomicWrite(written))
        assert await collect(journal.replay("a")) == written

    async def test_replay_keeps_empty_and_large_payloads_and_unicode_ids(
        self, journal: Journal
    ) -> None:
        empty = PersistentRecord("ünï-😀", 1, "Empty", b"", "", 0, ())
        large = PersistentRecord("ünï-😀", 2, "Large", bytes(range(256)) * 4096, "w", 5, ("t",))
        await write_ok(journal, AtomicWrite([empty]), AtomicWrite([large]))
        assert await collect(journal.replay("ünï-😀")) == [empty, large]

    async def test_replay_of_an_unknown_id_yields_nothing(self, journal: Journal) -> None:
        await write_ok(journal, atomic("a", 1, 3))
        assert await collect(journal.replay("b")) == []

    async def test_replay_respects_inclusive_bounds(self, journal: Journal) -> None:
        await write_ok(journal, atomic("a", 1, 10))
        assert seqs(await collect(journal.replay("a", 3, 7))) == [3, 4, 5, 6, 7]
        assert seqs(await collect(journal.replay("a", 10, 10))) == [10]
        assert seqs(await collect(journal.replay("a", 9))) == [9, 10]
        assert seqs(await collect(journal.replay("a", to_sequence_nr=2))) == [1, 2]
        assert seqs(await collect(journal.replay("a", 0, MAX_SEQUENCE_NR))) == list(range(1, 11))

    async def test_replay_outside_the_stored_range_yields_nothing(self, journal: Journal) -> None:
        await write_ok(journal, atomic("a", 1, 5))
        assert await collect(journal.replay("a", 6)) == []
        assert await collect(journal.replay("a", 4, 3)) == []

    async def test_replay_stops_after_max_count_events(self, journal: Journal) -> None:
        await write_ok(journal, atomic("a", 1, 10))
        assert seqs(await collect(journal.replay("a", 2, 9, 3))) == [2, 3, 4]
        assert seqs(await collect(journal.replay("a", max_count=1))) == [1]
        assert await collect(journal.replay("a", max_count=0)) == []
        assert len(await collect(journal.replay("a", max_count=100))) == 10

    async def test_replay_returns_only_the_requested_id(self, journal: Journal) -> None:
        for n in range(1, 6):
            await write_ok(journal, atomic("a", n), atomic("b", n), atomic("ab", n))
        replayed = await collect(journal.replay("a"))
        assert replayed == [record("a", n) for n in range(1, 6)]

    async def test_replay_of_thousands_of_events_returns_all_in_order(
        self, journal: Journal
    ) -> None:
        await write_ok(journal, *(atomic("a", low, low + 99) for low in range(1, 5001, 100)))
        replayed = await collect(journal.replay("a"))
        assert seqs(replayed) == list(range(1, 5001))
        assert replayed[4321] == record("a", 4322)
        assert seqs(await collect(journal.replay("a", 1500, 4500, 2500))) == list(range(1500, 4000))

    async def test_replay_as_rows_gives_the_events_of_replay_within_the_same_bounds(
        self, journal: Journal
    ) -> None:
        await write_ok(journal, *(atomic("a", low, low + 99) for low in range(1, 3001, 100)))
        empty = PersistentRecord("a", 3001, "Empty", b"", "w", 0, ())
        await write_ok(journal, atomic("b", 1, 3), AtomicWrite([empty]))
        await journal.delete_to("a", 10)
        for bounds in [
            (1, MAX_SEQUENCE_NR, MAX_SEQUENCE_NR),
            (0, MAX_SEQUENCE_NR, MAX_SEQUENCE_NR),
            (3, 7, MAX_SEQUENCE_NR),
            (15, 2999, 2500),
            (2990, MAX_SEQUENCE_NR, 1),
            (1, MAX_SEQUENCE_NR, 0),
            (3002, MAX_SEQUENCE_NR, MAX_SEQUENCE_NR),
        ]:
            replayed = as_rows(await collect(journal.replay("a", *bounds)))
            assert await collect_rows(row_pages(journal, "a", *bounds)) == replayed, bounds
        assert len(replayed) == 0
        rows = await collect_rows(row_pages(journal, "a"))
        assert rows[0] == (11, "Event2", b"a:11")
        assert rows[-1] == (3001, "Empty", b"")
        assert len(rows) == 2991
        assert await collect_rows(row_pages(journal, "nobody")) == []

    async def test_write_of_an_empty_batch_returns_an_empty_list(self, journal: Journal) -> None:
        assert await journal.write([]) == []

    async def test_every_atomic_write_of_a_batch_is_stored(self, journal: Journal) -> None:
        results = await journal.write([atomic("a", 1, 2), atomic("b", 1), atomic("a", 3, 5)])
        assert results == [None, None, None]
        assert seqs(await collect(journal.replay("a"))) == [1, 2, 3, 4, 5]
        assert seqs(await collect(journal.replay("b"))) == [1]

    async def test_concurrent_writers_all_get_their_events_stored(self, journal: Journal) -> None:
        async def writer(pid: str) -> None:
            for n in range(1, 11):
                await write_ok(journal, atomic(pid, n))

        await asyncio.gather(*(writer(f"w{i}") for i in range(50)))
        for i in range(50):
            assert await collect(journal.replay(f"w{i}")) == [
                record(f"w{i}", n) for n in range(1, 11)
            ]

    # --- highest sequence number --------------------------------------------------------------

    async def test_highest_sequence_nr_of_an_unknown_id_is_zero(self, journal: Journal) -> None:
        assert await journal.highest_sequence_nr("nobody") == 0

    async def test_highest_sequence_nr_is_the_last_stored_number_per_id(
        self, journal: Journal
    ) -> None:
        await write_ok(journal, atomic("a", 1, 7), atomic("b", 1, 2))
        assert await journal.highest_sequence_nr("a") == 7
        assert await journal.highest_sequence_nr("b") == 2
        await collect(journal.replay("a", 1, 3))  # bounds of a replay change nothing
        assert await journal.highest_sequence_nr("a") == 7

    # --- deleting -----------------------------------------------------------------------------

    async def test_delete_to_is_inclusive_and_replay_starts_after_it(
        self, journal: Journal
    ) -> None:
        await write_ok(journal, atomic("a", 1, 10))
        await journal.delete_to("a", 4)
        assert seqs(await collect(journal.replay("a"))) == [5, 6, 7, 8, 9, 10]
        assert seqs(await collect(journal.replay("a", 1, 6))) == [5, 6]

    async def test_delete_to_of_everything_keeps_the_highest_sequence_nr(
        self, journal: Journal
    ) -> None:
        await write_ok(journal, atomic("a", 1, 3))
        await journal.delete_to("a", 3)
        assert await collect(journal.replay("a")) == []
        assert await journal.highest_sequence_nr("a") == 3

    async def test_delete_to_beyond_the_highest_neither_raises_nor_lowers_it(
        self, journal: Journal
    ) -> None:
        await write_ok(journal, atomic("a", 1, 3))
        await journal.delete_to("a", MAX_SEQUENCE_NR)
        assert await collect(journal.replay("a")) == []
        assert await journal.highest_sequence_nr("a") == 3

    async def test_writing_continues_after_everything_was_deleted(self, journal: Journal) -> None:
        await write_ok(journal, atomic("a", 1, 3))
        await journal.delete_to("a", 3)
        await write_ok(journal, atomic("a", 4, 5))
        assert seqs(await collect(journal.replay("a"))) == [4, 5]
        assert await journal.highest_sequence_nr("a") == 5

    async def test_delete_to_leaves_other_ids_alone(self, journal: Journal) -> None:
        await write_ok(journal, atomic("a", 1, 3), atomic("b", 1, 3))
        await journal.delete_to("a", 2)
        await journal.delete_to("unknown", 5)
        assert seqs(await collect(journal.replay("b"))) == [1, 2, 3]
        assert await journal.highest_sequence_nr("unknown") == 0

    async def test_deleting_twice_or_below_earlier_deletions_changes_nothing(
        self, journal: Journal
    ) -> None:
        await write_ok(journal, atomic("a", 1, 5))
        await journal.delete_to("a", 3)
        await journal.delete_to("a", 2)
        await journal.delete_to("a", 3)
        assert seqs(await collect(journal.replay("a"))) == [4, 5]

    # --- conflicts ----------------------------------------------------------------------------

    async def test_writing_a_taken_number_fails_with_a_conflict_and_keeps_the_original(
        self, journal: Journal
    ) -> None:
        await write_ok(journal, atomic("a", 1, 2))
        impostor = AtomicWrite([PersistentRecord("a", 2, "Other", b"other")])
        [result] = await journal.write([impostor])
        assert isinstance(result, SequenceNrConflictError)
        assert (result.persistence_id, result.sequence_nr) == ("a", 2)
        assert str(result) == (
            "sequence number already taken, persistence_id='a', sequence_nr=2: "
            "is another writer running for this id?"
        )
        assert await collect(journal.replay("a")) == [record("a", 1), record("a", 2)]

    async def test_a_conflicting_atomic_write_stores_nothing_while_the_rest_of_the_batch_is_stored(
        self, journal: Journal
    ) -> None:
        await write_ok(journal, atomic("a", 1, 2))
        results = await journal.write([atomic("b", 1), atomic("a", 2, 4), atomic("c", 1, 2)])
        assert results[0] is None
        assert isinstance(results[1], SequenceNrConflictError)
        assert results[2] is None
        assert seqs(await collect(journal.replay("a"))) == [1, 2]
        assert await journal.highest_sequence_nr("a") == 2
        assert seqs(await collect(journal.replay("b"))) == [1]
        assert seqs(await collect(journal.replay("c"))) == [1, 2]

    async def test_two_atomic_writes_of_the_same_numbers_in_one_batch_store_only_the_first(
        self, journal: Journal
    ) -> None:
        first = atomic("a", 1, 2)
        second = AtomicWrite([PersistentRecord("a", n, "Other", b"other") for n in (1, 2)])
        results = await journal.write([first, second])
        assert results[0] is None
        assert isinstance(results[1], SequenceNrConflictError)
        assert await collect(journal.replay("a")) == list(first.records)

    async def test_concurrent_writes_of_the_same_number_store_exactly_one(
        self, journal: Journal
    ) -> None:
        one = AtomicWrite([PersistentRecord("a", 1, "One", b"1")])
        two = AtomicWrite([PersistentRecord("a", 1, "Two", b"2")])
        [first], [second] = await asyncio.gather(journal.write([one]), journal.write([two]))
        assert first is None
        assert isinstance(second, SequenceNrConflictError)
        assert await collect(journal.replay("a")) == list(one.records)

    async def test_an_overlapping_write_after_a_gap_is_refused(self, journal: Journal) -> None:
        await write_ok(journal, atomic("a", 1, 2), atomic("a", 5, 6))
        [result] = await journal.write([atomic("a", 3, 5)])
        assert isinstance(result, SequenceNrConflictError)
        assert result.sequence_nr == 5
        await write_ok(journal, atomic("a", 3, 4))
        assert seqs(await collect(journal.replay("a"))) == [1, 2, 3, 4, 5, 6]

    # --- owner epochs (fencing tokens) ---------------------------------------------------------

    async def test_a_write_below_the_stored_epoch_is_refused_saying_a_newer_owner_exists(
        self, journal: Journal
    ) -> None:
        if not await _epochs_supported(journal):
            return
        await write_ok(journal, fenced("a", 1, 2, epoch=3))
        [result] = await journal.write([fenced("a", 3, epoch=2)])
        assert type(result) is OwnerEpochFencedError
        assert (result.persistence_id, result.owner_epoch, result.stored_epoch) == ("a", 2, 3)
        assert str(result) == (
            "write refused, persistence_id='a', owner_epoch=2: a newer owner exists (owner "
            "epoch 3 has written this id); this incarnation must stop"
        )
        assert seqs(await collect(journal.replay("a"))) == [1, 2]
        assert await journal.highest_sequence_nr("a") == 2

    async def test_equal_and_higher_epochs_are_accepted_and_a_higher_one_fences_the_old_owner(
        self, journal: Journal
    ) -> None:
        if not await _epochs_supported(journal):
            return
        await write_ok(journal, fenced("a", 1, epoch=1), fenced("a", 2, epoch=1))
        await write_ok(journal, fenced("a", 3, epoch=2))  # the new owner takes over
        [old] = await journal.write([fenced("a", 4, epoch=1)])  # the old one wakes up
        assert isinstance(old, OwnerEpochFencedError)
        await write_ok(journal, fenced("a", 4, epoch=2))
        await write_ok(journal, atomic("a", 5))  # a write without an epoch is not fenced
        assert seqs(await collect(journal.replay("a"))) == [1, 2, 3, 4, 5]

    async def test_epochs_are_kept_per_persistence_id(self, journal: Journal) -> None:
        if not await _epochs_supported(journal):
            return
        await write_ok(journal, fenced("a", 1, epoch=7))
        await write_ok(journal, fenced("b", 1, epoch=1))
        results = await journal.write([fenced("b", 2, epoch=1), fenced("a", 2, epoch=6)])
        assert results[0] is None
        assert isinstance(results[1], OwnerEpochFencedError)

    async def test_a_refused_write_does_not_raise_the_epoch_nor_fail_the_rest_of_its_batch(
        self, journal: Journal
    ) -> None:
        if not await _epochs_supported(journal):
            return
        await write_ok(journal, fenced("a", 1, epoch=1))
        results = await journal.write(
            [fenced("a", 1, epoch=5), atomic("b", 1), fenced("c", 1, epoch=0)]
        )
        assert isinstance(results[0], SequenceNrConflictError)  # not stored: epoch stays 1
        assert results[1:] == [None, None]
        await write_ok(journal, fenced("a", 2, epoch=1))
        [bad] = await journal.write([fenced("a", 3, epoch=-1)])
        assert type(bad) is JournalError
        assert str(bad) == (
            "invalid atomic write, persistence_id='a': owner_epoch must be None or an int from 0 "
            f"to {MAX_SEQUENCE_NR}, not -1"
        )
        assert seqs(await collect(journal.replay("a"))) == [1, 2]

    async def test_concurrent_owners_never_both_write_after_the_newer_one(
        self, journal: Journal
    ) -> None:
        if not await _epochs_supported(journal):
            return
        old_owner = [journal.write([fenced("a", n, epoch=1)]) for n in range(1, 21)]
        new_owner = [journal.write([fenced("a", 100 + n, epoch=2)]) for n in range(1, 21)]
        interleaved = [w for pair in zip(old_owner, new_owner, strict=True) for w in pair]
        outcomes = [result for [result] in await asyncio.gather(*interleaved)]
        stored = await collect(journal.replay("a"))
        first_new = next(i for i, r in enumerate(stored) if r.sequence_nr > 100)
        assert all(r.sequence_nr > 100 for r in stored[first_new:])
        refused = [r for r in outcomes if r is not None]
        assert all(isinstance(r, OwnerEpochFencedError) for r in refused)
        assert len(stored) + len(refused) == 40

    async def test_the_stored_epoch_survives_reopening(
        self, journal: Journal, reopen: Reopen | None
    ) -> None:
        if not await _epochs_supported(journal):
            return
        await write_ok(journal, fenced("a", 1, epoch=4))
        await journal.close()
        async with reopened(reopen) as again:
            [result] = await again.write([fenced("a", 2, epoch=3)])
            assert isinstance(result, OwnerEpochFencedError)
            await write_ok(again, fenced("a", 2, epoch=4))

    # --- malformed atomic writes --------------------------------------------------------------

    async def test_malformed_atomic_writes_are_rejected_and_the_rest_stored(
        self, journal: Journal
    ) -> None:
        mixed = AtomicWrite([record("a", 1), record("b", 2)])
        gap = AtomicWrite([record("a", 1), record("a", 3)])
        empty = AtomicWrite([])
        zero = AtomicWrite([record("a", 0), record("a", 1)])
        results = await journal.write([mixed, atomic("c", 1), gap, empty, zero])
        assert results[1] is None
        for index in (0, 2, 3, 4):
            assert not list(_rejected(results[index])), results[index]
        assert await collect(journal.replay("a")) == []
        assert await collect(journal.replay("b")) == []
        assert await journal.highest_sequence_nr("a") == 0
        assert seqs(await collect(journal.replay("c"))) == [1]

    async def test_an_atomic_write_with_text_that_is_not_utf8_is_rejected_alone(
        self, journal: Journal
    ) -> None:
        bad = f"bad{LONE_SURROGATE}"
        bad_id = AtomicWrite([record(bad, 1, payload=b"x")])
        bad_tag = AtomicWrite([record("t", 1, tags=("fine", bad))])
        bad_manifest = AtomicWrite([record("m", 1), record("m", 2)._replace(manifest=bad)])
        bad_writer = AtomicWrite([record("w", 1)._replace(writer_id=bad)])
        results = await journal.write(
            [atomic("a", 1), bad_id, bad_tag, atomic("b", 1, 2), bad_manifest, bad_writer]
        )
        assert results[0] is None
        assert results[3] is None
        assert not list(_rejected(results[1], bad)), results[1]
        for index, pid in ((2, "t"), (4, "m"), (5, "w")):
            assert not list(_rejected(results[index], pid, bad)), results[index]
        assert seqs(await collect(journal.replay("a"))) == [1]
        assert seqs(await collect(journal.replay("b"))) == [1, 2]
        for pid in ("t", "m", "w"):
            assert await collect(journal.replay(pid)) == []
            assert await journal.highest_sequence_nr(pid) == 0

    async def test_concurrent_writers_are_not_failed_by_one_unstorable_write(
        self, journal: Journal
    ) -> None:
        """Writes of one loop turn may share a transaction: the bad one must not sink it."""
        bad = AtomicWrite([record("bad", 1, tags=(LONE_SURROGATE,))])
        outcomes = await asyncio.gather(
            *(journal.write([atomic(f"w{i}", 1)]) for i in range(5)),
            journal.write([bad]),
            *(journal.write([atomic(f"w{i}", 2)]) for i in range(5)),
        )
        assert outcomes[:5] == [[None]] * 5
        assert outcomes[6:] == [[None]] * 5
        [rejection] = outcomes[5]
        assert not list(_rejected(rejection, "bad", LONE_SURROGATE)), rejection
        for i in range(5):
            assert seqs(await collect(journal.replay(f"w{i}"))) == [1, 2]

    async def test_atomic_writes_of_the_wrong_types_are_rejected_alone(
        self, journal: Journal
    ) -> None:
        wrong = [
            AtomicWrite([record("p", 1)._replace(payload="text")]),  # type: ignore[arg-type]
            AtomicWrite([record("p", 1)._replace(manifest=None)]),  # type: ignore[arg-type]
            AtomicWrite([record("p", 1)._replace(tags="tag")]),  # type: ignore[arg-type]
            AtomicWrite([record("p", 1)._replace(tags=None)]),  # type: ignore[arg-type]
            AtomicWrite([record("p", 1)._replace(timestamp=1 << 63)]),
            AtomicWrite([record("p", 1)._replace(timestamp=1.5)]),  # type: ignore[arg-type]
            AtomicWrite([record("p", MAX_SEQUENCE_NR), record("p", MAX_SEQUENCE_NR + 1)]),
            AtomicWrite([record(7, 1)]),  # type: ignore[arg-type]
        ]
        results = await journal.write([*wrong, atomic("ok", 1)])
        for result in results[:-1]:
            assert not list(_rejected(result)), result
        assert results[-1] is None
        assert await collect(journal.replay("p")) == []
        assert await journal.highest_sequence_nr("p") == 0

    async def test_reading_an_id_or_tag_that_is_not_utf8_finds_nothing(
        self, journal: Journal
    ) -> None:
        bad = f"bad{LONE_SURROGATE}"
        await write_ok(journal, atomic("a", 1, tags=("t",)))
        assert await collect(journal.replay(bad)) == []
        assert await journal.highest_sequence_nr(bad) == 0
        await journal.delete_to(bad, 1)
        if isinstance(journal, ReadJournal):
            assert await collect_tagged(journal.events_by_tag(bad)) == []
            assert await journal.persistence_ids() == ["a"]

    # --- closing ------------------------------------------------------------------------------

    async def test_every_call_after_close_raises_journal_closed_error_saying_what_to_do(
        self, journal: Journal
    ) -> None:
        """Closing is final: the error says the journal was closed and to create a new one."""
        await write_ok(journal, atomic("a", 1))
        await journal.close()
        with pytest.raises(JournalClosedError, match=CLOSED_MESSAGE):
            await journal.write([atomic("a", 2)])
        with pytest.raises(JournalClosedError, match=CLOSED_MESSAGE):
            await collect(journal.replay("a"))
        with pytest.raises(JournalClosedError, match=CLOSED_MESSAGE):
            await journal.highest_sequence_nr("a")
        with pytest.raises(JournalClosedError, match=CLOSED_MESSAGE):
            await journal.delete_to("a", 1)
        if isinstance(journal, ReadJournal):
            with pytest.raises(JournalClosedError, match=CLOSED_MESSAGE):
                await journal.persistence_ids()
            with pytest.raises(JournalClosedError, match=CLOSED_MESSAGE):
                await collect_tagged(journal.events_by_tag("t"))
            with pytest.raises(JournalClosedError, match=CLOSED_MESSAGE):
                await journal.highest_ordering()

    async def test_a_journal_closed_before_first_use_stays_closed(self, journal: Journal) -> None:
        """Nothing reopens a closed journal, not even one that was never opened."""
        await journal.close()
        with pytest.raises(JournalClosedError, match=CLOSED_MESSAGE):
            await journal.write([atomic("a", 1)])
        with pytest.raises(JournalClosedError, match=CLOSED_MESSAGE):
            await collect(journal.replay("a"))
        with pytest.raises(JournalClosedError, match=CLOSED_MESSAGE):
            await journal.highest_sequence_nr("a")

    async def test_closing_twice_is_harmless(self, journal: Journal) -> None:
        await write_ok(journal, atomic("a", 1))
        await journal.close()
        await journal.close()

    async def test_close_waits_for_writes_already_submitted(self, journal: Journal) -> None:
        await write_ok(journal, atomic("first", 1))
        writes = [asyncio.ensure_future(journal.write([atomic(f"w{i}", 1)])) for i in range(20)]
        await asyncio.sleep(0)
        await journal.close()
        assert [await write for write in writes] == [[None]] * 20

    # --- durability ---------------------------------------------------------------------------

    async def test_events_survive_closing_and_reopening(
        self, journal: Journal, reopen: Reopen | None
    ) -> None:
        written = [record("a", 1, tags=("t",)), record("a", 2), record("a", 3)]
        await write_ok(journal, AtomicWrite(written[:2]), AtomicWrite(written[2:]))
        await write_ok(journal, atomic("b", 1))
        await journal.close()
        async with reopened(reopen) as again:
            assert await collect(again.replay("a")) == written
            assert await again.highest_sequence_nr("a") == 3
            assert await again.highest_sequence_nr("b") == 1
            [conflict] = await again.write([atomic("a", 3)])
            assert isinstance(conflict, SequenceNrConflictError)
            await write_ok(again, atomic("a", 4))
        async with reopened(reopen) as third:
            assert seqs(await collect(third.replay("a"))) == [1, 2, 3, 4]

    async def test_deletions_and_the_highest_number_survive_reopening(
        self, journal: Journal, reopen: Reopen | None
    ) -> None:
        await write_ok(journal, atomic("a", 1, 5), atomic("b", 1, 5))
        await journal.delete_to("a", 5)
        await journal.delete_to("b", 2)
        await journal.close()
        async with reopened(reopen) as again:
            assert await collect(again.replay("a")) == []
            assert await again.highest_sequence_nr("a") == 5
            assert seqs(await collect(again.replay("b"))) == [3, 4, 5]
            assert await again.highest_sequence_nr("b") == 5

    # --- read side ----------------------------------------------------------------------------

    async def test_orderings_start_at_one_and_increase_in_write_order(
        self, journal: Journal
    ) -> None:
        read = _read_side(journal)
        assert await read.highest_ordering() == 0
        await write_ok(journal, atomic("a", 1, tags=("t",)))
        await write_ok(journal, atomic("b", 1, tags=("t",)), atomic("a", 2, 3, tags=("t",)))
        tagged = await collect_tagged(read.events_by_tag("t"))
        assert [(t.record.persistence_id, t.record.sequence_nr) for t in tagged] == [
            ("a", 1),
            ("b", 1),
            ("a", 2),
            ("a", 3),
        ]
        orderings = [t.ordering for t in tagged]
        assert orderings[0] == 1
        assert orderings == sorted(set(orderings))
        assert await read.highest_ordering() == orderings[-1]

    async def test_events_by_tag_returns_only_events_with_the_tag(self, journal: Journal) -> None:
        read = _read_side(journal)
        await write_ok(
            journal,
            atomic("a", 1, tags=("red",)),
            atomic("a", 2, tags=("red", "blue")),
            atomic("b", 1, tags=("blue",)),
            atomic("b", 2),
        )
        red = await collect_tagged(read.events_by_tag("red"))
        blue = await collect_tagged(read.events_by_tag("blue"))
        assert [t.record for t in red] == [
            record("a", 1, tags=("red",)),
            record("a", 2, tags=("red", "blue")),
        ]
        assert [t.record for t in blue] == [
            record("a", 2, tags=("red", "blue")),
            record("b", 1, tags=("blue",)),
        ]
        assert red[1].ordering == blue[0].ordering
        assert await collect_tagged(read.events_by_tag("green")) == []

    async def test_events_by_tag_offsets_are_exclusive_and_max_count_limits(
        self, journal: Journal
    ) -> None:
        read = _read_side(journal)
        await write_ok(journal, *(atomic(f"p{n % 3}", n // 3 + 1, tags=("t",)) for n in range(12)))
        everything = await collect_tagged(read.events_by_tag("t"))
        assert len(everything) == 12
        offset = everything[4].ordering
        after = await collect_tagged(read.events_by_tag("t", after_ordering=offset))
        assert after == everything[5:]
        limited = await collect_tagged(read.events_by_tag("t", offset, max_count=3))
        assert limited == everything[5:8]
        last = everything[-1].ordering
        assert await collect_tagged(read.events_by_tag("t", after_ordering=last)) == []
        assert await collect_tagged(read.events_by_tag("t", max_count=0)) == []

    async def test_events_by_tag_of_thousands_of_events_returns_all_in_order(
        self, journal: Journal
    ) -> None:
        read = _read_side(journal)
        writes = [atomic(f"p{n}", 1, 10, tags=("bulk",)) for n in range(300)]
        await write_ok(journal, *writes)
        tagged = await collect_tagged(read.events_by_tag("bulk"))
        assert len(tagged) == 3000
        assert [t.record for t in tagged] == [r for write in writes for r in write.records]

    async def test_events_by_tag_omits_deleted_events(self, journal: Journal) -> None:
        read = _read_side(journal)
        await write_ok(journal, atomic("a", 1, 3, tags=("t",)), atomic("b", 1, tags=("t",)))
        await journal.delete_to("a", 2)
        tagged = await collect_tagged(read.events_by_tag("t"))
        assert [(t.record.persistence_id, t.record.sequence_nr) for t in tagged] == [
            ("a", 3),
            ("b", 1),
        ]

    async def test_rejected_writes_appear_nowhere_on_the_read_side(self, journal: Journal) -> None:
        read = _read_side(journal)
        await write_ok(journal, atomic("a", 1, tags=("t",)))
        mixed = AtomicWrite([record("x", 1, tags=("t",)), record("y", 1, tags=("t",))])
        results = await journal.write([atomic("a", 1, tags=("t",)), mixed])
        assert isinstance(results[0], SequenceNrConflictError)
        assert not list(_rejected(results[1])), results[1]
        assert len(await collect_tagged(read.events_by_tag("t"))) == 1
        assert await read.persistence_ids() == ["a"]

    async def test_persistence_ids_lists_every_id_that_stored_events_in_first_write_order(
        self, journal: Journal
    ) -> None:
        read = _read_side(journal)
        assert await read.persistence_ids() == []
        await write_ok(journal, atomic("m", 1), atomic("z", 1))
        await write_ok(journal, atomic("a", 1), atomic("m", 2))
        await journal.delete_to("z", 1)
        assert await read.persistence_ids() == ["m", "z", "a"]

    async def test_first_write_order_counts_the_first_stored_event_not_the_lowest_number(
        self, journal: Journal
    ) -> None:
        read = _read_side(journal)
        await write_ok(journal, atomic("b", 2), atomic("a", 1), atomic("b", 1))
        assert await read.persistence_ids() == ["b", "a"]
        await journal.delete_to("b", 2)
        assert await read.persistence_ids() == ["b", "a"]

    async def test_orderings_are_not_reused_after_deleting_the_newest_events(
        self, journal: Journal
    ) -> None:
        read = _read_side(journal)
        await write_ok(journal, atomic("a", 1, 3, tags=("t",)))
        before = await collect_tagged(read.events_by_tag("t"))
        await journal.delete_to("a", 3)
        await write_ok(journal, atomic("a", 4, tags=("t",)))
        [after] = await collect_tagged(read.events_by_tag("t"))
        assert after.ordering > before[-1].ordering

    async def test_the_read_side_survives_reopening(
        self, journal: Journal, reopen: Reopen | None
    ) -> None:
        read = _read_side(journal)
        await write_ok(journal, atomic("b", 1, 2, tags=("t",)), atomic("a", 1, tags=("t",)))
        before = await collect_tagged(read.events_by_tag("t"))
        await journal.close()
        async with reopened(reopen) as again:
            read_again = _read_side(again)
            assert await collect_tagged(read_again.events_by_tag("t")) == before
            assert await read_again.persistence_ids() == ["b", "a"]
            await write_ok(again, atomic("a", 2, tags=("t",)))
            newest = await collect_tagged(read_again.events_by_tag("t", before[-1].ordering))
            assert [t.record.sequence_nr for t in newest] == [2]
            assert await read_again.highest_ordering() == newest[0].ordering
