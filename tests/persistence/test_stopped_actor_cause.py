"""A persistent actor that stopped because its journal failed says why to whoever asks it next."""

from __future__ import annotations

from pathlib import Path

import pytest

from actorsys import ActorDeadError, ActorSystem, Terminated
from actorsys.testing import TestProbe
from persistence import JournalError, Persistence
from persistence.journal import FileJournal
from tests.persistence._actors import Append, Appended, Failed, Get, ItemLog, serializer
from tests.persistence._journals import ControlledJournal


async def test_an_actor_whose_recovery_failed_tells_askers_the_journals_error(
    tmp_path: Path,
) -> None:
    holder = FileJournal(tmp_path)
    await holder.highest_ordering()  # another user of the directory holds its lock
    try:
        persistence = Persistence(FileJournal(tmp_path), serializer=serializer)
        async with ActorSystem("app", extensions=[persistence]) as system:
            probe = TestProbe(system, "probe")
            ref = system.spawn(lambda: ItemLog("account-7", probe.ref), "account")
            probe.watch(ref)
            asked_while_recovering = ref.ask(Get())
            with pytest.raises(ActorDeadError) as early:
                await asked_while_recovering
            await probe.fish_for_message(lambda message: message == Terminated(ref))
            with pytest.raises(ActorDeadError) as late:
                ref.ask(Get())
    finally:
        await holder.close()
    expected = (
        "actor /user/account has stopped: JournalError: the file journal at "
        f"{str(tmp_path)!r} is in use by another process (or by another FileJournal of this "
        "one); close that one first, or open this one with read_only=True to only read"
    )
    for caught in (early, late):
        assert str(caught.value) == expected
        assert isinstance(caught.value.__cause__, JournalError)


async def test_an_actor_stopped_by_a_failed_write_tells_later_askers_the_write_error(
    system: ActorSystem, probe: TestProbe, journal: ControlledJournal
) -> None:
    ref = system.spawn(lambda: ItemLog("failing", probe.ref), "failing")
    probe.watch(ref)
    error = OSError("disk full")
    journal.fail_next_writes(error)
    probe.send(ref, Append("a"))
    assert await probe.fish_for_message(lambda m: isinstance(m, Failed)) == Failed(
        error, Appended("a"), 1
    )
    await probe.expect_terminated(ref)
    with pytest.raises(ActorDeadError) as caught:
        ref.ask(Get())
    assert str(caught.value) == "actor /user/failing has stopped: OSError: disk full"
    assert caught.value.__cause__ is error
