"""Nesting: the depth limit (``MAX_DEPTH``, see ``_wire``) on both sides, and decoding that never
nests msgpack calls more than a few deep, whatever the payload.

msgpack's C unpacker keeps an explicit stack for arrays and maps (``StackError`` past 1024
levels), but its extension hook runs inside the unpack call, and an ``unpackb`` call takes ~41 KB
of C stack (its context embeds that 1024-entry stack). A hook that unpacked each nested extension
value with another ``unpackb`` would take that much per nesting level: a payload a few hundred
levels deep overflowed the C stack and killed the interpreter. So there are two ways to decode:

- :func:`resolve`, for any payload: one msgpack call with :func:`ext_hook`, which never unpacks,
  leaves each container extension value (nested object, tuple, set, frozenset) as a
  :class:`Pending` holding its bytes; ``resolve`` unpacks and builds those from an explicit stack,
  children before parents, counting levels (:class:`DepthError` past ``MAX_DEPTH``) and refusing
  msgpack's Timestamp on the way.
- the shallow path, for a payload that :func:`is_shallow`: fewer than ``MAX_DEPTH`` bytes that
  can open a level (every level needs one: a map, array or extension header), so it cannot nest
  too deep, and no byte pattern that can start a Timestamp. Its hook (:func:`shallow_hook`)
  unpacks and builds a container extension value at once, up to ``SHALLOW_LEVELS`` nested; one
  level more raises :class:`Nested` and the caller falls back to ``resolve``. This is as fast as
  plain recursive decoding, with the recursion bounded.

Encoding checks the depth with :func:`check_depth` (iteratively) unless the packed payload is
shallow by the same byte count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import msgpack
from msgpack import StackError, Timestamp

from persistence.serialization._codecs import Codec
from persistence.serialization._wire import (
    CONTAINERS,
    FROZENSET,
    LEAF_DECODERS,
    MAX_DEPTH,
    OBJECT,
    SET,
    TUPLE,
    brief,
    object_reference,
)

TOO_DEEP: Final = f"values nested more than {MAX_DEPTH} levels deep (the wire format's limit)"
TIMESTAMP: Final = "extension type code -1 (msgpack's Timestamp) is not part of the wire format"


class DepthError(ValueError):
    """A value or payload nests deeper than ``MAX_DEPTH``; the message says where."""


class Nested(Exception):
    """Raised by :func:`leaf_hook` at a container extension: decode the payload with ``resolve``."""


class Pending:
    """A container extension value whose bytes are not unpacked yet (see :func:`resolve`)."""

    __slots__ = ("code", "data", "value")

    def __init__(self, code: int, data: bytes) -> None:
        self.code = code
        self.data = data
        self.value: Any = None  # the built value, once resolved (for a dict key)

    def __repr__(self) -> str:
        return f"<{CONTAINERS[self.code]} (extension type {self.code})>"


BuildObject = Callable[[str, Any], Any]
"""Builds a nested registered value from its manifest and stored form (nested values built)."""

COLLECTIONS: Final[dict[int, Callable[[list[Any]], Any]]] = {
    TUPLE: tuple,
    SET: set,
    FROZENSET: frozenset,
}


_unpackb: Final = msgpack.unpackb


# -- any payload: an explicit stack --------------------------------------------------------------


def ext_hook(code: int, data: bytes) -> Any:
    """msgpack's extension hook for :func:`resolve`: never unpacks, so it never nests."""
    if code in CONTAINERS:
        return Pending(code, data)
    decoder = LEAF_DECODERS.get(code)
    if decoder is None:
        raise ValueError(f"unknown extension type code {code}")
    return decoder(data)


def unpack(data: bytes) -> Any:
    """One msgpack object, container extension values left :class:`Pending`."""
    return _unpackb(data, ext_hook=ext_hook, strict_map_key=False)


def checked(code: int, inner: Any) -> list[Any]:
    """The unpacked array of a container extension, checked: ``[manifest, form]`` for a nested
    object, an array of the items for the others."""
    if code == OBJECT:
        object_reference(inner)
    elif type(inner) is not list:
        raise ValueError(f"{CONTAINERS[code]} must be stored as an array, got {brief(inner)}")
    return inner  # type: ignore[no-any-return]


SPECIAL: Final[frozenset[type]] = frozenset({list, dict, Pending, Timestamp})
"""Types of decoded values that :func:`resolve` must look into (anything else is a finished leaf).
A dict key can only be a ``Pending`` or a ``Timestamp`` of them: lists and dicts are unhashable."""

_KEY: Final = object()  # the slot of a dict key: its built value goes to Pending.value


def resolve(form: Any, unpack: Callable[[bytes], Any], build_object: BuildObject) -> Any:
    """Build every :class:`Pending` in ``form``, the unpacked form of a stored object.

    Iterative: ``unpack`` is called from here, never from inside msgpack, and nested values wait
    on an explicit stack. Raises :class:`DepthError` past ``MAX_DEPTH`` levels and ValueError for
    a msgpack Timestamp or a malformed container; whatever ``unpack`` and ``build_object`` raise
    passes through.
    """
    kind = type(form)
    if kind is dict:  # the object's fields: level 1
        if not _holds_special(form):
            return form
        level = 1
    elif kind in SPECIAL:  # e.g. an enum member's value
        level = 2
    else:
        return form
    root = [form]  # the root's parent: one slot
    # (node, level, parent, slot): node is at ``level``; its built value goes to parent[slot]
    stack: list[tuple[Any, int, Any, Any]] = [(form, level, root, 0)]
    # nodes that wait for their children, in visiting order: built in reverse, children first
    waiting: list[tuple[Any, list[Any] | None, Any, Any]] = []
    while stack:
        node, level, parent, slot = stack.pop()
        if level > MAX_DEPTH:
            raise DepthError(TOO_DEEP)
        kind = type(node)
        if kind is list or kind is dict:
            if _push_items(node, level + 1, stack):  # a dict with Pending keys: rebuild it
                waiting.append((node, None, parent, slot))
        elif kind is Pending:
            inner = checked(node.code, unpack(node.data))
            if _push_contents(node.code, inner, level, stack):
                waiting.append((node, inner, parent, slot))
            else:  # nothing inside waits: build it now
                _place(_build(node.code, inner, build_object), node, parent, slot)
        else:
            raise ValueError(TIMESTAMP)
    for node, inner, parent, slot in reversed(waiting):
        if inner is None:
            value = {(k.value if type(k) is Pending else k): v for k, v in node.items()}
        else:
            value = _build(node.code, inner, build_object)
        _place(value, node, parent, slot)
    return root[0]


def _build(code: int, inner: list[Any], build_object: BuildObject) -> Any:
    if code == OBJECT:
        return build_object(inner[0], inner[1])
    return COLLECTIONS[code](inner)


def _holds_special(fields: dict[Any, Any]) -> bool:
    return any(type(value) in SPECIAL or type(key) in SPECIAL for key, value in fields.items())


def _push_items(node: Any, level: int, stack: list[tuple[Any, int, Any, Any]]) -> bool:
    """Push the items of a list or dict that need work; whether a dict key is one of them."""
    if type(node) is list:
        for index, item in enumerate(node):
            if type(item) in SPECIAL:
                stack.append((item, level, node, index))
        return False
    keyed = False
    for key, item in node.items():
        if type(item) in SPECIAL:
            stack.append((item, level, node, key))
        if type(key) in SPECIAL:
            stack.append((key, level, node, _KEY))
            keyed = True
    return keyed


def _push_contents(
    code: int, inner: list[Any], level: int, stack: list[tuple[Any, int, Any, Any]]
) -> bool:
    """Push what a container extension at ``level`` holds that needs work; whether anything."""
    if code != OBJECT:
        before = len(stack)
        _push_items(inner, level + 1, stack)
        return len(stack) > before
    fields = inner[1]
    if type(fields) is dict:  # a nested object's fields map is part of its level
        if not _holds_special(fields):
            return False
        stack.append((fields, level, inner, 1))
    elif type(fields) in SPECIAL:
        stack.append((fields, level + 1, inner, 1))
    else:
        return False
    return True


def _place(value: Any, node: Any, parent: Any, slot: Any) -> None:
    if slot is _KEY:
        node.value = value
    else:
        parent[slot] = value


# -- the shallow path ----------------------------------------------------------------------------

SHALLOW_LEVELS: Final = 4
"""How many container extension values the shallow path unpacks inside each other (a tuple of
objects holding a Money with a Currency enum is 4). At most ``SHALLOW_LEVELS + 2`` msgpack calls
are ever nested: the payload's, one per level, and a leaf's (a timedelta's array)."""


def leaf_hook(code: int, data: bytes) -> Any:
    """The shallow path's hook below ``SHALLOW_LEVELS``: leaves only, :class:`Nested` otherwise."""
    decoder = LEAF_DECODERS.get(code)
    if decoder is not None:
        return decoder(data)
    if code in CONTAINERS:
        raise Nested
    raise ValueError(f"unknown extension type code {code}")


def shallow_hook(build_object: BuildObject) -> Callable[[int, bytes], Any]:
    """The extension hook of the shallow path: builds container values at once (nested objects
    with ``build_object``), ``SHALLOW_LEVELS`` deep. Only for a payload that :func:`is_shallow`."""
    hook: Callable[[int, bytes], Any] = leaf_hook
    for _ in range(SHALLOW_LEVELS):
        hook = _container_hook(build_object, hook)
    return hook


def _container_hook(
    build_object: BuildObject, inner: Callable[[int, bytes], Any]
) -> Callable[[int, bytes], Any]:
    def hook(code: int, data: bytes) -> Any:
        decoder = LEAF_DECODERS.get(code)
        if decoder is not None:
            return decoder(data)
        if code == OBJECT:
            items = _unpackb(data, ext_hook=inner, strict_map_key=False)
            if type(items) is not list or len(items) != 2 or type(items[0]) is not str:
                object_reference(items)  # raises, saying what is wrong
            return build_object(items[0], items[1])
        collection = COLLECTIONS.get(code)
        if collection is not None:
            items = _unpackb(data, ext_hook=inner, strict_map_key=False)
            return collection(checked(code, items))
        raise ValueError(f"unknown extension type code {code}")

    return hook


# every byte that can open a level: fixmap, fixarray, ext 8/16/32, fixext, array 16/32, map 16/32
_OPENERS: Final = bytes(
    [*range(0x80, 0xA0), 0xC7, 0xC8, 0xC9, *range(0xD4, 0xD9), *range(0xDC, 0xE0)]
)
# a Timestamp is an extension of type -1 (0xff) and length 4, 8 or 12: fixext 4, fixext 8, or
# ext 8/16/32 whose length field ends in 04, 08 or 0c right before the type byte
_TIMESTAMP_STARTS: Final = (b"\xd6\xff", b"\xd7\xff", b"\x04\xff", b"\x08\xff", b"\x0c\xff")


def few_openers(payload: bytes) -> bool:
    """Whether ``payload`` has fewer than ``MAX_DEPTH`` bytes that can open a level, so it
    surely nests no deeper than ``MAX_DEPTH`` (a value at level n needs n - 1 such headers)."""
    data = payload if type(payload) is bytes else bytes(payload)
    return len(data) - len(data.translate(None, _OPENERS)) < MAX_DEPTH


def is_shallow(payload: bytes) -> bool:
    """Whether ``payload`` may take the shallow path: few openers, surely no Timestamp."""
    data = payload if type(payload) is bytes else bytes(payload)
    if len(data) - len(data.translate(None, _OPENERS)) >= MAX_DEPTH:
        return False
    return 0xFF not in data or not any(start in data for start in _TIMESTAMP_STARTS)


def depth_reason(exc: BaseException) -> str | None:
    """The message for a nesting error (ours or msgpack's empty ``StackError``), else None."""
    if isinstance(exc, DepthError):
        return str(exc)
    if isinstance(exc, StackError):  # only raised past 1024 levels of arrays and maps
        return TOO_DEEP
    return None


# -- encoding ------------------------------------------------------------------------------------

_CONTAINER_TYPES: Final[frozenset[type]] = frozenset({list, tuple, set, frozenset, dict})


def check_depth(form: Any, codecs: Mapping[type, Codec]) -> None:
    """Raise :class:`DepthError` if the stored form of an object nests deeper than ``MAX_DEPTH``.

    Iterative, so a value nested arbitrarily deep (or a reference cycle) is this error, never a
    ``RecursionError``. Values of unsupported types count as leaves: packing reports them.
    """
    stack: list[tuple[Any, int, str]] = []
    if type(form) is dict:
        for name, value in form.items():
            field = name if type(name) is str else f"a {type(name).__name__} key"
            kind = type(value)
            if kind in _CONTAINER_TYPES or kind in codecs:
                stack.append((value, 2, field))
            kind = type(name)
            if kind is not str and (kind in _CONTAINER_TYPES or kind in codecs):
                stack.append((name, 2, field))
    elif type(form) in _CONTAINER_TYPES or type(form) in codecs:
        stack.append((form, 2, "value"))
    push = stack.append
    while stack:
        value, level, field = stack.pop()
        if level > MAX_DEPTH:
            raise DepthError(
                f"field {field!r} nests values more than {MAX_DEPTH} levels deep, the wire "
                "format's limit (the object is level 1; each list, tuple, set, frozenset, dict "
                "and registered value in it adds one): store such data flatter, e.g. a tree as a "
                "list of nodes that name their parent"
            )
        kind = type(value)
        children: Iterable[Any]
        if kind is dict:
            children = (*value, *value.values())
        elif kind in _CONTAINER_TYPES:
            children = value
        else:
            nested = codecs[kind].to_form(value)
            children = (*nested, *nested.values()) if type(nested) is dict else (nested,)
        level += 1
        for child in children:
            kind = type(child)
            if kind in _CONTAINER_TYPES or kind in codecs:
                push((child, level, field))
