"""The transport: only registered types decode from the wire."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import msgpack

from actorsys import DeadLetter
from cluster._transport import DELIVER, node_subject
from tests.cluster._nodes import placement, start_node
from tests.cluster._support import eventually


async def test_a_message_of_a_type_that_is_not_registered_is_never_decoded(
    nats_url: str, cluster_name: str, logs: list[MutableMapping[str, Any]]
) -> None:
    node = await start_node(nats_url, cluster_name, "n1")
    letters: list[DeadLetter] = []
    node.event_stream.subscribe(letters.append, DeadLetter)
    try:
        hostile = msgpack.packb([DELIVER, "Counter", "e1", "os.system", b"\x91\xa2ls", None])
        await placement(node).nc.publish(node_subject(cluster_name, "n1"), hostile)
        await eventually(lambda: any(e["event"] == "cluster_message_dropped" for e in logs))
        [dropped] = [e for e in logs if e["event"] == "cluster_message_dropped"]
        assert "UnknownManifestError" in dropped["error"]
        assert "os.system" in dropped["error"]
        assert letters == []
    finally:
        await node.shutdown()
