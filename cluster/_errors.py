"""The cluster's errors.

ClusterError                  the cluster cannot do what was asked (connection, settings)
├── CasFailedError            a compare-and-set write lost (internal: ownership is elsewhere)
├── ClusterUnavailableError   NATS is unreachable right now: the message was not sent
└── RemoteError               the actor on another node raised while handling an ask
"""

from __future__ import annotations


class ClusterError(Exception):
    """The cluster cannot do what was asked; the message says why and what to do."""


class ClusterUnavailableError(ClusterError):
    """The node's connection to NATS is down (reconnecting): nothing was sent."""


class RemoteError(ClusterError):
    """An actor on another node raised while handling an ask; ``type_name`` names the
    exception's class there, ``node`` the node it was raised on."""

    def __init__(self, type_name: str, detail: str, node: str) -> None:
        super().__init__(f"{type_name} on node {node!r}: {detail}")
        self.type_name = type_name
        self.detail = detail
        self.node = node

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str, str]]:
        return (RemoteError, (self.type_name, self.detail, self.node))
