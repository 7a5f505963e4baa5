"""Messages between nodes: one subject per node, msgpack envelopes, refs that cross nodes.

Every message for node ``n`` is published to ``actorsys.<name>.node.<n>`` by one writer per
connection, so messages from one sender arrive in the order sent. An envelope is a msgpack array::

    [DELIVER, type_name, entity_id | nil, manifest, payload, sender]   to the region of type_name
    [TO_REF, ref_id, manifest, payload, sender]                        to an actor (a reply)
    [FAIL_REF, ref_id, error_type, detail, node]                       an ask failed remotely

``manifest``/``payload`` are the message encoded by the cluster's serializer (a
:class:`~cluster.ShardingEnvelope` travels as its entity id plus its inner message); only
registered types decode, and a type that is not registered fails at ``send`` with an error
naming it. ``sender`` is nil or ``[node, ref_id, ask]``: the node that can reach the actor and the
id it exported it under (its path, or ``ask-<n>`` for the reply address of an ask, ``ask`` true).
On the receiving node a sender becomes a :class:`~actorsys.runtime.RemoteRef` whose ``tell``
publishes back. An ask's reply address is relayed through a local reply address
(:func:`actorsys.runtime.new_promise`), so that a reply, or the exception the asked actor raised,
travels back to the asker (the latter as :class:`~cluster.RemoteError`). A relayed ask that goes on
to a third node (a region forwards it to the shard's new home) travels with the asker's own address
again: the reply goes straight to the asker, not through this node, which may have left by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

import msgpack

from actorsys import ActorRef, ActorSystem, AskTimeoutError, runtime
from cluster._errors import ClusterError, ClusterUnavailableError, RemoteError
from cluster._logging import log
from cluster._messages import ShardingEnvelope

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from persistence.serialization import Serializer

DELIVER, TO_REF, FAIL_REF = 0, 1, 2
RELAY_TIMEOUT = 300.0
"""How long a node keeps the relay of a remote ask that is not answered (the asker's own
timeout decides what the asker sees)."""
_MAX_REMOTE_REFS = 10_000
_FORWARDED = object()
"""What a relay is completed with once its ask went on to another node (nothing to send back)."""


def node_subject(cluster_name: str, node: str) -> str:
    return f"actorsys.{cluster_name}.node.{node}"


class NodeRef(runtime.RemoteRef):
    """An actor on node ``node``, exported there under ``ref_id``."""

    __slots__ = ("_transport", "ask_id", "node", "ref_id")

    def __init__(self, transport: Transport, node: str, ref_id: str, ask: bool) -> None:
        super().__init__(transport.system, f"{node}:{ref_id}", self._send_here)
        self._transport = transport
        self.node = node
        self.ref_id = ref_id
        self.ask_id = ask

    def _send_here(self, message: Any, sender: ActorRef | None) -> None:
        """A tell never fails because NATS is down: the message is a dead letter then (a type
        that cannot be encoded still raises, naming it)."""
        transport = self._transport
        try:
            transport.send_to_ref(self.node, self.ref_id, message, sender)
        except ClusterUnavailableError as error:
            log.warning(
                "cluster_reply_not_sent", node=transport.node, to=self.node, error=str(error)
            )
            runtime.publish_dead_letter(transport.system, message, sender, self)


class Transport:
    """Sends and receives the envelopes of one node."""

    def __init__(
        self,
        nc: Client,
        system: ActorSystem,
        cluster_name: str,
        node: str,
        serializer: Serializer,
        regions: dict[str, ActorRef],
    ) -> None:
        self._nc = nc
        self.system = system
        self._name = cluster_name
        self.node = node
        self._serializer = serializer
        self._regions = regions
        self._exports: dict[str, ActorRef] = {}
        self._ask_ids = itertools.count(1)
        self._remote: OrderedDict[tuple[str, str], NodeRef] = OrderedDict()
        self._relays: dict[ActorRef, NodeRef] = {}
        """The reply addresses of remote asks relayed to local actors, with their askers."""
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._writer: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self._packb = msgpack.Packer(use_bin_type=True).pack

    async def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._write())
        self._subscription = await self._nc.subscribe(
            node_subject(self._name, self.node), cb=self._received
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        await self.flush()
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None

    async def flush(self) -> None:
        """Wait until every queued envelope was handed to the connection."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                await self._drained.wait()

    # -- sending --------------------------------------------------------------------------------

    def deliver(self, node: str, type_name: str, message: Any, sender: ActorRef | None) -> None:
        """Send ``message`` (as its region received it) to the region ``type_name`` of ``node``."""
        if message.__class__ is ShardingEnvelope:
            entity_id = message.entity_id
            manifest, payload = self._serializer.encode(message.message)
        else:
            entity_id = None
            manifest, payload = self._serializer.encode(message)
        data = self._packb([DELIVER, type_name, entity_id, manifest, payload, self._export(sender)])
        self._publish(node, data)

    def send_to_ref(self, node: str, ref_id: str, message: Any, sender: ActorRef | None) -> None:
        manifest, payload = self._serializer.encode(message)
        self._publish(node, self._packb([TO_REF, ref_id, manifest, payload, self._export(sender)]))

    def _fail_ref(self, node: str, ref_id: str, error: BaseException) -> None:
        if isinstance(error, RemoteError):
            data = [FAIL_REF, ref_id, error.type_name, error.detail, error.node]
        else:
            data = [FAIL_REF, ref_id, type(error).__name__, str(error), self.node]
        self._publish(node, self._packb(data))

    def _publish(self, node: str, data: bytes) -> None:
        if not self._nc.is_connected:
            raise ClusterUnavailableError(
                f"cannot send to node {node!r}: this node ({self.node}) is not connected to NATS "
                "(reconnecting); the message was not sent, try again"
            )
        self._outbox.append((node_subject(self._name, node), data))
        self._drained.clear()
        self._wake.set()

    async def _write(self) -> None:
        outbox = self._outbox
        publish = self._nc.publish
        while True:
            await self._wake.wait()
            self._wake.clear()
            while outbox:
                subject, data = outbox[0]
                try:
                    await publish(subject, data)
                except Exception as error:
                    log.warning(
                        "cluster_publish_failed", node=self.node, subject=subject, error=repr(error)
                    )
                outbox.popleft()
            self._drained.set()

    def _export(self, sender: ActorRef | None) -> list[Any] | None:
        if sender is None:
            return None
        if isinstance(sender, NodeRef):
            return [sender.node, sender.ref_id, sender.ask_id]
        future = runtime.promise_future(sender)
        if future is not None:
            asker = self._relays.pop(sender, None)
            if asker is not None:  # a remote ask goes on to another node: it replies to the asker
                sender.tell(_FORWARDED)
                return [asker.node, asker.ref_id, True]
            ref_id = f"ask-{next(self._ask_ids)}"
            self._exports[ref_id] = sender
            future.add_done_callback(lambda _: self._exports.pop(ref_id, None))
            return [self.node, ref_id, True]
        ref_id = sender.path
        self._exports[ref_id] = sender
        return [self.node, ref_id, False]

    # -- receiving ------------------------------------------------------------------------------

    def _import(self, sender: list[Any] | None) -> ActorRef | None:
        if sender is None:
            return None
        node, ref_id, ask = sender
        if node == self.node:
            local = self._exports.get(ref_id)
            if local is not None:
                return local
        key = (node, ref_id)
        remote = self._remote.get(key)
        if remote is None:
            remote = self._remote[key] = NodeRef(self, node, ref_id, bool(ask))
            if len(self._remote) > _MAX_REMOTE_REFS:
                self._remote.popitem(last=False)
        return remote

    async def _received(self, msg: Msg) -> None:
        try:
            envelope = msgpack.unpackb(msg.data, raw=False)
            kind = envelope[0]
            if kind == DELIVER:
                self._on_deliver(*envelope[1:])
            elif kind == TO_REF:
                self._on_to_ref(*envelope[1:])
            elif kind == FAIL_REF:
                self._on_fail_ref(*envelope[1:])
            else:
                raise ValueError(f"unknown envelope kind {kind!r}")
        except Exception as error:
            log.warning(
                "cluster_message_dropped", node=self.node, error=repr(error), size=len(msg.data)
            )

    def _on_deliver(
        self,
        type_name: str,
        entity_id: str | None,
        manifest: str,
        payload: bytes,
        sender_wire: list[Any] | None,
    ) -> None:
        sender = self._import(sender_wire)
        try:
            message = self._serializer.decode_one(manifest, payload)
        except Exception as error:
            self._reject(sender, error)
            raise
        if entity_id is not None:
            message = ShardingEnvelope(entity_id, message)
        region = self._regions.get(type_name)
        if region is None:
            missing = ClusterError(
                f"node {self.node!r} runs no shard region of {type_name!r}: start it there with "
                f"ClusterSharding(system).start({type_name!r}, ...)"
            )
            self._reject(sender, missing)
            runtime.publish_dead_letter(self.system, message, sender, self.system.dead_letters)
            return
        if isinstance(sender, NodeRef) and sender.ask_id:
            sender = self._relay(region, sender)
        region.tell(message, sender)

    def _reject(self, sender: ActorRef | None, error: BaseException) -> None:
        if isinstance(sender, NodeRef) and sender.ask_id:
            self._fail_ref(sender.node, sender.ref_id, error)

    def _relay(self, target: ActorRef, asker: NodeRef) -> ActorRef:
        """A local reply address whose outcome goes back to the remote asker."""
        promise, future = runtime.new_promise(target, RELAY_TIMEOUT)
        node, ref_id = asker.node, asker.ref_id
        relays = self._relays
        relays[promise] = asker

        def done(future: asyncio.Future[Any]) -> None:
            relays.pop(promise, None)
            outcome: BaseException | None = future.exception()
            if outcome is None:
                reply = future.result()
                if reply is _FORWARDED:
                    return
                try:
                    self.send_to_ref(node, ref_id, reply, None)
                    return
                except Exception as failure:  # the reply cannot be encoded or sent
                    log.warning(
                        "cluster_reply_not_sent", node=self.node, to=node, error=repr(failure)
                    )
                    outcome = failure
            if not isinstance(outcome, AskTimeoutError):
                with contextlib.suppress(Exception):
                    self._fail_ref(node, ref_id, outcome)

        future.add_done_callback(done)
        return promise

    def _on_to_ref(
        self, ref_id: str, manifest: str, payload: bytes, sender_wire: list[Any] | None
    ) -> None:
        sender = self._import(sender_wire)
        message = self._serializer.decode_one(manifest, payload)
        target = self._exports.get(ref_id)
        if target is None:
            runtime.publish_dead_letter(self.system, message, sender, self.system.dead_letters)
            return
        target.tell(message, sender)

    def _on_fail_ref(self, ref_id: str, type_name: str, detail: str, node: str) -> None:
        target = self._exports.get(ref_id)
        if target is not None:
            runtime.fail_ask(target, RemoteError(type_name, detail, node))
