"""One message at a time, per-sender order, tell, dead letters and unhandled messages."""

from __future__ import annotations

import asyncio
from typing import Any

from actorsys import Actor, ActorRef, ActorSystem, DeadLetter, EventStream
from actorsys.testing import ManualClock, TestProbe, settle
from tests.actors._helpers import Echo, Silent, expect_quiet

PING = ("ping", 1)


class Gated(Actor):
    """Handles ``"slow"`` by waiting for ``gate``; reports every step to ``probe``."""

    def __init__(self, probe: ActorRef, gate: asyncio.Event) -> None:
        super().__init__()
        self.probe = probe
        self.gate = gate

    async def receive(self, message: Any) -> None:
        if message == "slow":
            self.probe.tell("slow-start")
            await self.gate.wait()
            self.probe.tell("slow-end")
        else:
            self.probe.tell(message)


async def test_a_plain_receive_handles_messages_one_at_a_time_in_mailbox_order(
    system: ActorSystem,
) -> None:
    seen: list[int] = []
    done = asyncio.get_running_loop().create_future()

    class Recorder(Actor):
        active = 0

        def receive(self, message: int) -> None:
            Recorder.active += 1
            assert Recorder.active == 1
            seen.append(message)
            Recorder.active -= 1
            if message == 999:
                done.set_result(None)

    ref = system.spawn(Recorder)
    for i in range(1000):
        ref.tell(i)
    await done
    assert seen == list(range(1000))


async def test_an_await_inside_async_receive_keeps_later_messages_waiting(
    system: ActorSystem, clock: ManualClock, probe: TestProbe
) -> None:
    gate = asyncio.Event()
    ref = system.spawn(lambda: Gated(probe.ref, gate), "gated")
    ref.tell("slow")
    ref.tell("fast")
    await probe.expect_message("slow-start")
    await settle()
    assert ref.mailbox_stats().queued == 1  # "fast" waits while "slow" awaits
    await expect_quiet(probe, clock)
    gate.set()
    await probe.expect_message("slow-end")
    await probe.expect_message("fast")


async def test_messages_from_one_sender_arrive_in_send_order(
    system: ActorSystem, probe: TestProbe
) -> None:
    received: dict[str, list[int]] = {"a": [], "b": []}

    class Receiver(Actor):
        def receive(self, message: tuple[str, int]) -> None:
            sender, n = message
            received[sender].append(n)
            if all(len(v) == 200 for v in received.values()):
                probe.ref.tell("all-received")

    class Sender(Actor):
        def __init__(self, name: str, target: ActorRef) -> None:
            super().__init__()
            self.name = name
            self.target = target

        async def receive(self, message: Any) -> None:
            for n in range(200):
                self.target.tell((self.name, n))
                if n % 7 == 0:
                    await asyncio.sleep(0)  # let the other sender interleave

    receiver = system.spawn(Receiver)
    system.spawn(lambda: Sender("a", receiver)).tell("go")
    system.spawn(lambda: Sender("b", receiver)).tell("go")
    await probe.expect_message("all-received")
    assert received == {"a": list(range(200)), "b": list(range(200))}


async def test_tell_never_blocks_even_while_the_receiver_is_busy(
    system: ActorSystem, probe: TestProbe
) -> None:
    gate = asyncio.Event()
    ref = system.spawn(lambda: Gated(probe.ref, gate))
    ref.tell("slow")
    await probe.expect_message("slow-start")
    for i in range(10_000):
        ref.tell(i)  # no await anywhere: every tell returns at once
    assert ref.mailbox_stats().queued == 10_000
    gate.set()
    await probe.expect_message("slow-end")
    for i in range(10_000):
        assert await probe.receive() == i


class Desk(Actor):
    """Forwards every message to ``target``."""

    def __init__(self, target: ActorRef) -> None:
        super().__init__()
        self.target = target

    def receive(self, message: Any) -> None:
        self.context.forward(message, self.target)


class SenderReporter(Actor):
    """Tells ``probe`` each message with the sender it sees."""

    def __init__(self, probe: ActorRef) -> None:
        super().__init__()
        self.probe = probe

    def receive(self, message: Any) -> None:
        self.probe.tell((message, self.context.sender))


async def test_forward_passes_the_message_on_with_the_sender_of_the_message_being_handled(
    system: ActorSystem, probe: TestProbe
) -> None:
    reporter = system.spawn(lambda: SenderReporter(probe.ref))
    desk = system.spawn(lambda: Desk(reporter))
    customer = TestProbe(system, "customer")
    customer.send(desk, "hello")
    assert await probe.receive() == ("hello", customer.ref)
    desk.tell("anonymous")
    assert await probe.receive() == ("anonymous", system.dead_letters)


async def test_an_ask_through_a_forwarding_actor_is_answered_by_the_final_receiver(
    system: ActorSystem,
) -> None:
    desk = system.spawn(lambda: Desk(system.spawn(Echo)))
    assert await desk.ask("hi", timeout=5) == "hi"


async def test_forward_to_a_stopped_actor_is_a_dead_letter_from_the_original_sender(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    target = system.spawn(Echo, "gone")
    await system.stop(target)
    desk = system.spawn(lambda: Desk(target))
    probe.send(desk, "late")
    await settle()
    assert dead_letters == [DeadLetter("late", probe.ref, target)]


async def test_tell_to_a_stopped_actor_publishes_a_dead_letter_on_the_event_stream(
    system: ActorSystem, probe: TestProbe
) -> None:
    system.event_stream.subscribe(probe.ref, DeadLetter)
    ref = system.spawn(Echo, "echo")
    await system.stop(ref)
    assert not ref.is_alive
    ref.tell("late", probe.ref)
    assert await probe.expect_message_type(DeadLetter) == DeadLetter("late", probe.ref, ref)


async def test_dead_letters_reach_callable_subscribers_and_subscribers_of_a_base_type(
    system: ActorSystem, dead_letters: list[DeadLetter]
) -> None:
    everything: list[object] = []
    system.event_stream.subscribe(everything.append, object)
    ref = system.spawn(Echo)
    await system.stop(ref)
    ref.tell("one")
    ref.tell("two")
    assert dead_letters == [DeadLetter("one", None, ref), DeadLetter("two", None, ref)]
    assert everything == dead_letters


async def test_system_dead_letters_ref_publishes_what_it_is_told(
    system: ActorSystem, dead_letters: list[DeadLetter]
) -> None:
    system.dead_letters.tell("nowhere")
    assert dead_letters == [DeadLetter("nowhere", None, system.dead_letters)]
    assert system.dead_letters.path == "/deadLetters"


async def test_unsubscribed_callables_get_no_more_events(system: ActorSystem) -> None:
    seen: list[object] = []
    system.event_stream.subscribe(seen.append, DeadLetter)
    assert system.event_stream.has_subscribers(DeadLetter)
    system.dead_letters.tell("first")
    system.event_stream.unsubscribe(seen.append)
    system.dead_letters.tell("second")
    assert [letter.message for letter in seen] == ["first"]  # type: ignore[attr-defined]
    assert not system.event_stream.has_subscribers(DeadLetter)


def test_an_event_stream_delivers_only_to_subscribers_of_a_matching_type() -> None:
    stream = EventStream()
    ints: list[object] = []
    strings: list[object] = []
    stream.subscribe(ints.append, int)
    stream.subscribe(strings.append, str)
    stream.publish(1)
    stream.publish("a")
    stream.unsubscribe(ints.append, str)  # other type: still subscribed
    stream.publish(2)
    assert ints == [1, 2]
    assert strings == ["a"]


async def test_messages_the_default_receive_does_not_handle_are_published_as_dead_letters(
    system: ActorSystem, probe: TestProbe, dead_letters: list[DeadLetter]
) -> None:
    class Nothing(Actor):
        pass

    ref = system.spawn(Nothing)
    probe.send(ref, "huh?")
    probe.send(ref, PING)
    await system.stop(ref)
    assert dead_letters == [DeadLetter("huh?", probe.ref, ref), DeadLetter(PING, probe.ref, ref)]


async def test_messages_passed_to_unhandled_are_published_as_dead_letters_and_logged(
    system: ActorSystem,
    probe: TestProbe,
    dead_letters: list[DeadLetter],
    logs: list[dict[str, Any]],
) -> None:
    class Picky(Actor):
        def receive(self, message: Any) -> None:
            if message == "known":
                self.context.sender.tell("handled")
            else:
                self.unhandled(message)

    ref = system.spawn(Picky, "picky")
    probe.send(ref, "unknown")
    probe.send(ref, "known")
    await probe.expect_message("handled")
    assert dead_letters == [DeadLetter("unknown", probe.ref, ref)]
    unhandled = [e for e in logs if e["event"] == "unhandled_message"]
    assert [(e["message"], e["sender"], e["recipient"]) for e in unhandled] == [
        ("'unknown'", "/user/probe", "/user/picky")
    ]


async def test_dead_letters_are_all_published_but_logged_at_most_ten_per_interval(
    system: ActorSystem, dead_letters: list[DeadLetter], logs: list[dict[str, Any]]
) -> None:
    ref = system.spawn(Silent, "gone")
    await system.stop(ref)
    for i in range(25):
        ref.tell(i)
    assert [letter.message for letter in dead_letters] == list(range(25))
    logged = [e for e in logs if e["event"] == "dead_letter"]
    assert [e["message"] for e in logged] == [repr(i) for i in range(10)]
    assert all(e["recipient"] == "/user/gone" for e in logged)


async def test_a_dead_letter_that_cannot_be_delivered_is_not_published_again(
    system: ActorSystem, dead_letters: list[DeadLetter]
) -> None:
    ref = system.spawn(Silent)
    await system.stop(ref)
    letter = DeadLetter("x", None, ref)
    ref.tell(letter)
    assert dead_letters == []  # no dead letter of a dead letter (no feedback loop)


async def test_the_dead_letter_log_limit_starts_over_once_its_interval_has_passed(
    system: ActorSystem, clock: ManualClock, logs: list[dict[str, Any]]
) -> None:
    ref = system.spawn(Silent, "gone")
    await system.stop(ref)
    for i in range(25):
        ref.tell(i)
    await clock.advance(5.0)
    ref.tell("same interval")  # still within 5 s of the first: suppressed
    await clock.advance(0.5)
    ref.tell("next interval")
    events = [(e["event"], e.get("message", e.get("count"))) for e in logs]
    events = [e for e in events if e[0] in {"dead_letter", "dead_letters_suppressed"}]
    assert events[10:] == [("dead_letters_suppressed", 16), ("dead_letter", "'next interval'")]
