"""AtLeastOnceDelivery redelivers by the system's clock, like its timers: a test can advance it."""

from __future__ import annotations

from actorsys import ActorSystem
from actorsys.testing import ManualClock, TestProbe
from persistence import Persistence
from tests.persistence._actors import serializer
from tests.persistence.test_at_least_once import Confirm, Confirmed, Msg, Send, Sender, Unconfirmed


async def test_redelivery_waits_for_the_redeliver_interval_on_the_systems_clock(
    clock: ManualClock,
) -> None:
    persistence = Persistence("memory:", serializer=serializer)
    async with ActorSystem("aloda", extensions=[persistence], clock=clock) as system:
        probe = TestProbe(system, "probe")
        receiver = TestProbe(system, "receiver")
        sender = system.spawn(lambda: Sender("aloda-clock", receiver.ref, probe.ref))
        assert await probe.receive() == Unconfirmed(0)
        sender.tell(Send("hello"))
        assert await receiver.receive() == Msg(1, "hello")
        await clock.advance(Sender.redeliver_interval / 2)  # a tick, too early to send again
        await receiver.expect_no_message(0.001)
        await clock.advance(Sender.redeliver_interval / 2)
        assert await receiver.receive() == Msg(1, "hello")  # one interval later: again
        sender.tell(Confirm(1))
        assert await probe.receive() == Confirmed(1)
        await clock.advance(Sender.redeliver_interval * 10)
        await receiver.expect_no_message(0.001)
