"""Where a file journal's events are: per persistence id, per tag, and the last ordering.

Built by the open scan (:meth:`JournalIndex.add_scanned`) and extended by every write
(:meth:`JournalIndex.add_batch`); it lives in memory only. A record's position packs its segment
number and offset into one int64: ``(segment_number << OFFSET_BITS) | offset``.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from operator import sub
from typing import Any, Final

from persistence.journal._file_format import KIND_EVENTS, JournalScan

OFFSET_BITS: Final = 40  # a position packs (segment_number << 40) | offset into one int64
OFFSET_MASK: Final = (1 << OFFSET_BITS) - 1

# an entry as the bytes of array("q") items: appending them with frombytes is ~3x faster than
# extending the array with a tuple
_ENTRY: Final = struct.Struct("=4q").pack
_TAG_ENTRY: Final = struct.Struct("=3q").pack

# a tagged record of a batch: its offset in the batch, its size, its first event's ordering,
# and the tags of each of its events
TaggedWrite = tuple[int, int, int, "list[Sequence[str]]"]


class IdIndex:
    """Where the live events of one persistence id are: ``(lo, hi, position, size)`` per record.

    Entries are sorted by sequence number and never overlap (one entry per atomic write, which
    holds consecutive numbers); deleted events are cut out of the entries.
    """

    __slots__ = ("deleted_to", "entries", "highest")

    def __init__(self) -> None:
        self.entries = array("q")
        self.highest = 0
        self.deleted_to = 0

    def first_ending_at_or_after(self, seq: int) -> int:
        """The index of the first entry with ``hi >= seq``."""
        entries = self.entries
        low, high = 0, len(entries) >> 2
        while low < high:
            mid = (low + high) >> 1
            if entries[(mid << 2) + 1] < seq:
                low = mid + 1
            else:
                high = mid
        return low

    def first_stored_in(self, lo: int, hi: int) -> int | None:
        """The lowest stored sequence number within ``[lo, hi]``, if any."""
        entries = self.entries
        index = self.first_ending_at_or_after(lo) << 2
        if index < len(entries) and entries[index] <= hi:
            return max(lo, entries[index])
        return None

    def add(self, lo: int, hi: int, position: int, size: int) -> None:
        entries = self.entries
        if not entries or lo > entries[-3]:
            entries.frombytes(_ENTRY(lo, hi, position, size))
        else:  # a number below a gap, written late: keep the entries sorted
            index = self.first_ending_at_or_after(lo) << 2
            entries[index:index] = array("q", (lo, hi, position, size))
        self.highest = max(self.highest, hi)

    def deletes_something(self, to_sequence_nr: int) -> bool:
        entries = self.entries
        return bool(entries) and entries[0] <= to_sequence_nr

    def delete_to(self, to_sequence_nr: int) -> None:
        entries = self.entries
        index = self.first_ending_at_or_after(to_sequence_nr + 1)
        del entries[: index << 2]
        if entries and entries[0] <= to_sequence_nr:
            entries[0] = to_sequence_nr + 1
        self.deleted_to = max(self.deleted_to, to_sequence_nr)

    def is_live(self, seq: int, position: int) -> bool:
        """Whether event ``seq`` of the record at ``position`` is still stored."""
        if seq > self.deleted_to:
            return True
        index = self.first_ending_at_or_after(seq) << 2
        entries = self.entries
        return index < len(entries) and entries[index] <= seq and entries[index + 2] == position

    def page(self, low: int, high: int, want: int) -> array[int]:
        """The entries holding the first ``want`` events within ``[low, high]`` (a slice of
        :attr:`entries`; the last one may hold more: an atomic write is read whole)."""
        entries = self.entries
        start = self.first_ending_at_or_after(low)
        stop = min(len(entries) >> 2, start + want)
        if stop > start and entries[(stop - 1) << 2] > high:
            stop = self.first_starting_after(high, start, stop)
        if stop - start > 1:
            los = entries[start << 2 : stop << 2 : 4]
            his = entries[(start << 2) + 1 : stop << 2 : 4]
            if sum(his) - sum(los) + stop - start > want:  # multi-event records: take fewer
                taken = 0
                for count, width in enumerate(map(sub, his, los), 1):
                    taken += width + 1
                    if taken >= want:
                        stop = start + count
                        break
        return entries[start << 2 : stop << 2]

    def first_starting_after(self, seq: int, low: int, high: int) -> int:
        """The index of the first entry in ``[low, high)`` with ``lo > seq``."""
        entries = self.entries
        while low < high:
            mid = (low + high) >> 1
            if entries[mid << 2] <= seq:
                low = mid + 1
            else:
                high = mid
        return low


class JournalIndex:
    """The index of a whole journal: an :class:`IdIndex` per persistence id, where the tagged
    records are per tag, and the ordering of the newest event."""

    __slots__ = ("ids", "ordering", "tags")

    def __init__(self) -> None:
        self.ids: dict[str, IdIndex] = {}  # insertion order is first-write order
        self.tags: dict[str, array[int]] = {}  # (highest tagged ordering, position, size)
        self.ordering = 0

    def clear(self) -> None:
        """Forget everything (an open that failed half way)."""
        self.ids.clear()
        self.tags.clear()
        self.ordering = 0

    def add_scanned(self, scan: JournalScan) -> None:
        """Index every record of the journal, applying deletions in order; the ordering
        continues after the scan's last one."""
        ids = self.ids
        for number, offset, size, value in scan.records():
            position = (number << OFFSET_BITS) | offset
            if value[0] == KIND_EVENTS:
                _, first_ordering, persistence_id, events = value
                index = ids.get(persistence_id)
                if index is None:
                    index = ids[persistence_id] = IdIndex()
                index.add(events[0][0], events[-1][0], position, size)
                if len(events) == 1:
                    if events[0][5]:
                        self.add_tags((events[0][5],), first_ordering, position, size)
                else:
                    tags = [event[5] for event in events]
                    if any(tags):
                        self.add_tags(tags, first_ordering, position, size)
            else:
                _, persistence_id, to_sequence_nr = value
                index = ids.get(persistence_id)
                if index is not None:
                    index.delete_to(to_sequence_nr)
        self.ordering = scan.last_ordering

    def add_batch(
        self, records: list[Any], tagged: list[TaggedWrite] | None, last_ordering: int, start: int
    ) -> None:
        """Add the records of a batch appended at ``start`` (``records`` four items each: id,
        lowest and highest sequence number, size; one after the other) and its ``tagged``
        ones; ``last_ordering`` is its last event's."""
        ids = self.ids
        entry = _ENTRY
        position = start
        items = iter(records)
        for persistence_id, lo, hi, size in zip(items, items, items, items, strict=True):
            index = ids.get(persistence_id)
            if index is None:
                index = ids[persistence_id] = IdIndex()
            if lo > index.highest:  # after every stored number: the common case, inlined
                index.entries.frombytes(entry(lo, hi, position, size))
                index.highest = hi
            else:
                index.add(lo, hi, position, size)
            position += size
        if tagged is not None:
            for offset, size, first_ordering, tags in tagged:
                self.add_tags(tags, first_ordering, start + offset, size)
        self.ordering = last_ordering

    def add_tags(
        self, tags: Sequence[Sequence[str]], first_ordering: int, position: int, size: int
    ) -> None:
        """Note the record at ``position`` under each tag its events carry (``tags`` per event,
        the first event's ordering ``first_ordering``), with the highest ordering carrying it."""
        highest_tagged: dict[str, int] = {}
        for event_ordering, event_tags in enumerate(tags, first_ordering):
            for tag in event_tags:
                highest_tagged[tag] = event_ordering
        for tag, tagged_ordering in highest_tagged.items():
            entries = self.tags.get(tag)
            if entries is None:
                entries = self.tags[tag] = array("q")
            entries.frombytes(_TAG_ENTRY(tagged_ordering, position, size))
