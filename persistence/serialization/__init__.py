"""Serialization of events and snapshots: msgpack under registered, stable type names.

Register every event, snapshot and nested type, then encode and decode::

    serializer = Serializer()

    @serializer.type("ClientRegistered")
    @dataclass(frozen=True)
    class ClientRegistered:
        client_id: str
        limit: Decimal

    manifest, payload = serializer.encode(ClientRegistered("c-7", Decimal("10000.00")))
    [event] = serializer.decode(manifest, payload, persistence_id="client-7")

The journal stores the manifest (the registered name, never a Python import path, and the schema
version when it is not 1: ``"ClientRegistered#2"``) next to the payload; decoding never unpickles
or imports anything. Older stored versions and names are rewritten by upcasters (rename, add a
field, split, drop), kept by name and version: only the steps from an event's stored version to the
registered one run, none for a current event. Registering without a name issues
:class:`ImplicitTypeNameWarning`. The wire format, a small grammar over msgpack, is documented in
:mod:`persistence.serialization._wire`; a stored value nests at most :data:`MAX_DEPTH` (100) levels
deep (each list, tuple, set, frozenset, dict and registered value in the event is one level).

Errors (from :mod:`persistence`): :class:`~persistence.SerializationError` when a value cannot be
encoded (naming its type and field path) or a payload cannot be decoded (naming the manifest and
persistence id), :class:`~persistence.UnknownManifestError` for a stored name that is not
registered.
"""

from persistence._public import expose
from persistence.serialization._serializer import (
    ImplicitTypeNameWarning,
    Serializer,
    default_serializer,
    event_type,
)
from persistence.serialization._wire import MAX_DEPTH, MAX_VERSION

__all__ = [
    "MAX_DEPTH",
    "MAX_VERSION",
    "ImplicitTypeNameWarning",
    "Serializer",
    "default_serializer",
    "event_type",
]

expose(__name__, globals(), __all__)
