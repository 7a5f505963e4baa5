"""The serializer: registered types, upcasters, encode and decode."""

from __future__ import annotations

import builtins
import warnings
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any, TypeVar

import msgpack

from persistence._errors import SerializationError, UnknownManifestError
from persistence.serialization._codecs import Codec, make_codec, registrable
from persistence.serialization._diagnose import describe_unencodable, qualified_name
from persistence.serialization._nesting import (
    Nested,
    check_depth,
    few_openers,
    is_shallow,
    resolve,
    shallow_hook,
    unpack,
)
from persistence.serialization._primitive import to_primitive
from persistence.serialization._upcasting import (
    Upcaster,
    Upcasters,
    check_name,
    check_version,
    reason,
)
from persistence.serialization._wire import (
    LEAF_ENCODERS,
    MAX_DEPTH,
    OBJECT,
    parse_manifest,
)

T = TypeVar("T")


class ImplicitTypeNameWarning(UserWarning):
    """A type was registered without a name, under its ``__qualname__``, which changes when the
    class is renamed or moved. Give the name explicitly (filter this category to silence it)."""

    __module__ = "persistence.serialization"  # the name to filter by, as help() shows it


_unpackb = msgpack.unpackb


def _where(persistence_id: str | None, sequence_nr: int | None = None) -> str:
    if persistence_id is None:
        return "" if sequence_nr is None else f" (sequence_nr={sequence_nr})"
    if sequence_nr is None:
        return f" (persistence_id={persistence_id!r})"
    return f" (persistence_id={persistence_id!r}, sequence_nr={sequence_nr})"


def _not_registered(cls: builtins.type) -> str:
    if registrable(cls):
        return (
            f"cannot encode {qualified_name(cls)}: the type is not registered; register it with "
            f'a stable name: serializer.register({cls.__name__}, "{cls.__name__}") or decorate '
            f'it with @event_type("{cls.__name__}")'
        )
    return (
        f"cannot encode {qualified_name(cls)}: an event or snapshot must be an instance of a "
        "registered class (a dataclass, NamedTuple, enum or class with to_fields()/from_fields()) "
        f"and {cls.__name__} cannot be registered; store the value in a field of such a class, "
        'e.g. a frozen dataclass decorated with @event_type("Name")'
    )


def _warn_unnamed(cls: builtins.type, name: str, stacklevel: int) -> None:
    warnings.warn(
        f"{qualified_name(cls)} is registered under its class name {name!r}, which changes when "
        "the class is renamed or moved and then orphans the events stored under it; register "
        f'{cls.__name__} with a stable name: @event_type("{name}") or '
        f'serializer.register({cls.__name__}, "{name}")',
        ImplicitTypeNameWarning,
        stacklevel=stacklevel,
    )


class Serializer:
    """Encodes registered types to ``(manifest, msgpack payload)`` and decodes them back.

    Register every event and snapshot class (and every class, enum or NamedTuple nested in them)
    under a stable name, and the schema version it is at, with :meth:`register` or the
    :meth:`type` decorator; the name and version are what the journal stores (the manifest). Old
    stored versions and names are brought up to date by upcasters (:meth:`add_upcaster`). The wire
    format is documented in :mod:`persistence.serialization._wire`.

    Thread-safe: each concurrent or nested encode uses its own msgpack packer.
    """

    __slots__ = (
        "_build",
        "_by_class",
        "_by_name",
        "_direct",
        "_hook",
        "_packers",
        "_upcasters",
    )

    def __init__(self) -> None:
        self._by_class: dict[builtins.type, Codec] = {}
        self._by_name: dict[str, Codec] = {}
        self._direct: dict[str, Codec] = {}  # by the manifest encode writes: no upcaster runs
        self._upcasters = Upcasters()
        self._packers: list[msgpack.Packer] = []  # idle packers; a Packer is not reentrant
        self._build = self._build_object  # bound once, not per decode
        self._hook = shallow_hook(self._build)  # for the shallow path of decoding

    # -- registration ---------------------------------------------------------------------------

    def register(
        self, cls: builtins.type[T], name: str | None = None, *, version: int = 1
    ) -> builtins.type[T]:
        """Register ``cls`` under the stable ``name``, at schema ``version``; returns ``cls``.

        Accepts dataclasses, NamedTuples, enums, and classes defining ``to_fields(self) -> dict``
        and classmethod ``from_fields(cls, fields: dict) -> instance``. Registering the same class
        under the same name and version again is a no-op. Without a name, the class's
        ``__qualname__`` is used and :class:`ImplicitTypeNameWarning` is issued: renaming the
        class would orphan its stored events. Raise ``version`` when the stored form changes, and
        add an upcaster from the old version (:meth:`add_upcaster`).
        """
        return self._register(cls, name, version)

    def _register(
        self, cls: builtins.type[T], name: str | None, version: int, stacklevel: int = 3
    ) -> builtins.type[T]:
        if not isinstance(cls, builtins.type):
            raise SerializationError(f"cannot register {cls!r}: it is not a class")
        manifest = cls.__qualname__ if name is None else name
        if not isinstance(manifest, str) or not manifest:
            raise SerializationError(
                f"cannot register {qualified_name(cls)} under {manifest!r}: the name must be a "
                "non-empty str"
            )
        check_name(
            manifest,
            f"cannot register {qualified_name(cls)} under {manifest!r}",
            "register it as {name!r}, version={version}",
        )
        check_version(version, f"cannot register {qualified_name(cls)} as {manifest!r}")
        taken = self._by_name.get(manifest)
        if taken is not None:
            if taken.cls is cls and taken.version == version:
                if name is None:
                    _warn_unnamed(cls, manifest, stacklevel + 1)
                return cls
            if taken.cls is cls:
                raise SerializationError(
                    f"cannot register {qualified_name(cls)} as {manifest!r} at version {version}: "
                    f"it is already registered at version {taken.version}"
                )
            raise SerializationError(
                f"cannot register {qualified_name(cls)} as {manifest!r}: that name is already "
                f"registered for {qualified_name(taken.cls)}"
            )
        current = self._by_class.get(cls)
        if current is not None:
            raise SerializationError(
                f"cannot register {qualified_name(cls)} as {manifest!r}: it is already "
                f"registered as {current.name!r}"
            )
        codec = make_codec(cls, manifest, version)
        self._upcasters.check_registration(codec)
        if name is None:
            _warn_unnamed(cls, manifest, stacklevel + 1)
        self._by_class[cls] = codec
        self._by_name[manifest] = codec
        self._direct[codec.manifest] = codec
        return cls

    def type(
        self, name: str | None = None, *, version: int = 1
    ) -> Callable[[builtins.type[T]], builtins.type[T]]:
        """Class decorator form of :meth:`register`: ``@serializer.type("ClientRegistered")``."""

        def decorate(cls: builtins.type[T]) -> builtins.type[T]:
            return self._register(cls, name, version)

        return decorate

    def add_upcaster(self, name: str, upcaster: Upcaster, *, from_version: int = 1) -> None:
        """Rewrite events stored under ``name`` at schema version ``from_version`` (default 1).

        The upcaster gets the stored field dict (nested values already decoded) and returns zero
        (drop), one or several (split) ``(manifest, fields)`` pairs. A pair under ``name`` itself
        is the next version (``from_version + 1``): its upcaster runs next, unless that is the
        version ``name`` is registered at. A pair under another name renames the event: version 1
        of that name, or the version its manifest gives (``"Deposited#3"``), brought up to date
        the same way. Events at the registered version never go through upcasters: upcasting a
        registered name needs it registered at a later version than ``from_version``.
        """
        self._upcasters.add(name, from_version, upcaster, self._by_name.get(name))

    def is_registered(self, cls: builtins.type) -> bool:
        """Whether ``cls`` itself (not a base class) is registered."""
        return cls in self._by_class

    # -- encoding -------------------------------------------------------------------------------

    def encode(self, obj: object) -> tuple[str, bytes]:
        """Return ``(manifest, payload)`` for a registered object, or raise SerializationError."""
        codec = self._by_class.get(builtins.type(obj))
        if codec is None:
            raise SerializationError(_not_registered(builtins.type(obj)))
        packers = self._packers
        try:
            packer = packers.pop()
        except IndexError:
            packer = self._new_packer()
        try:
            form = codec.to_form(obj)
            payload: bytes = packer.pack(form)
            if len(payload) >= MAX_DEPTH and not few_openers(payload):  # see _nesting
                check_depth(form, self._by_class)
        except Exception as exc:  # the packer may hold a partial buffer: it is dropped
            raise self._encode_error(obj, codec, exc) from exc
        packers.append(packer)
        return codec.manifest, payload

    def _new_packer(self) -> msgpack.Packer:
        # strict_types: subclasses (IntEnum, StrEnum, OrderedDict...) reach _default instead of
        # being silently stored as their base type. A small initial buffer (it grows on demand):
        # nested values each take a packer from the pool.
        return msgpack.Packer(
            default=self._default, strict_types=True, use_bin_type=True, buf_size=4096
        )

    def _pack_nested(self, value: Any) -> bytes:
        packers = self._packers
        try:
            packer = packers.pop()
        except IndexError:
            packer = self._new_packer()
        payload: bytes = packer.pack(value)
        packers.append(packer)
        return payload

    def _default(self, value: Any) -> msgpack.ExtType:
        cls = builtins.type(value)
        encoder = LEAF_ENCODERS.get(cls)
        if encoder is not None:
            return encoder(value, self._pack_nested)
        codec = self._by_class.get(cls)
        if codec is None:
            raise TypeError(f"unsupported type {qualified_name(cls)}")
        return msgpack.ExtType(OBJECT, self._pack_nested([codec.manifest, codec.to_form(value)]))

    def _encode_error(self, obj: object, codec: Codec, exc: Exception) -> SerializationError:
        try:
            form = codec.to_form(obj)
            problem = describe_unencodable(form, self._by_class)
            if problem is None:  # e.g. msgpack's RecursionError: say if it was too deep
                check_depth(form, self._by_class)
        except Exception as again:
            problem = reason(again)
        if problem is None:
            problem = reason(exc)
        return SerializationError(
            f"cannot encode {qualified_name(builtins.type(obj))} as {codec.manifest!r}: {problem}"
        )

    # -- decoding -------------------------------------------------------------------------------

    def decode(
        self,
        manifest: str,
        payload: bytes,
        persistence_id: str | None = None,
        sequence_nr: int | None = None,
    ) -> list[object]:
        """Decode a stored event: usually one object, zero or several when upcasters drop or split.

        Raises UnknownManifestError for a name with no registered type or upcaster, and
        SerializationError for a payload that is corrupt or does not fit the type; its message
        names the manifest and the ``persistence_id`` and ``sequence_nr`` given. Never crashes the
        interpreter, however deep or hostile the payload.
        """
        codec = self._direct.get(manifest)
        if codec is None:
            return self._decode_upcast(manifest, payload, persistence_id, sequence_nr)
        try:
            if (len(payload) < MAX_DEPTH and 0xFF not in payload) or is_shallow(payload):
                try:  # _unpack_payload, inlined: the replay hot path (see _nesting)
                    form = _unpackb(payload, ext_hook=self._hook, strict_map_key=False)
                except Nested:
                    form = self._unpack_form(payload)
            else:
                form = self._unpack_form(payload)
        except Exception as exc:
            raise self._unpack_error(manifest, persistence_id, sequence_nr, exc) from exc
        try:
            return [codec.from_form(form)]
        except Exception as exc:
            raise self._unfit_error(manifest, persistence_id, sequence_nr, exc) from exc

    def decode_one(
        self,
        manifest: str,
        payload: bytes,
        persistence_id: str | None = None,
        sequence_nr: int | None = None,
    ) -> object:
        """Like :meth:`decode` for exactly one object (SerializationError if upcasters yield more
        or fewer)."""
        codec = self._direct.get(manifest)
        if codec is None:
            objects = self._decode_upcast(manifest, payload, persistence_id, sequence_nr)
            if len(objects) != 1:
                raise SerializationError(
                    f"cannot decode {manifest!r}{_where(persistence_id, sequence_nr)} as one "
                    f"object: its upcasters turned it into {len(objects)}; use decode()"
                )
            return objects[0]
        try:
            if (len(payload) < MAX_DEPTH and 0xFF not in payload) or is_shallow(payload):
                try:  # _unpack_payload, inlined as in decode()
                    form = _unpackb(payload, ext_hook=self._hook, strict_map_key=False)
                except Nested:
                    form = self._unpack_form(payload)
            else:
                form = self._unpack_form(payload)
        except Exception as exc:
            raise self._unpack_error(manifest, persistence_id, sequence_nr, exc) from exc
        try:
            return codec.from_form(form)
        except Exception as exc:
            raise self._unfit_error(manifest, persistence_id, sequence_nr, exc) from exc

    def decode_rows(self, rows: Sequence[Sequence[Any]], start: int = 0) -> list[object]:
        """Decode replayed rows, ``(sequence_nr, manifest, payload, ...)`` each, from index
        ``start`` in one pass: one object per row, in order, up to the first row that this fast
        path leaves to :meth:`decode` (the result then has fewer objects than rows remain).

        Left to :meth:`decode`: a manifest that is not at its registered version (it goes through
        upcasters, which may drop or split the event) and a row that fails to decode
        (:meth:`decode` raises the error naming it). Decoding the rows left with :meth:`decode`
        gives the same objects as decoding every row with it.
        """
        direct = self._direct
        hook = self._hook
        unpackb = _unpackb
        objects: list[object] = []
        append = objects.append
        for row in islice(rows, start, None):
            codec = direct.get(row[1])
            if codec is None:
                break
            payload = row[2]
            try:
                if (len(payload) < MAX_DEPTH and 0xFF not in payload) or is_shallow(payload):
                    try:
                        form = unpackb(payload, ext_hook=hook, strict_map_key=False)
                    except Nested:
                        form = self._unpack_form(payload)
                else:
                    form = self._unpack_form(payload)
                append(codec.from_form(form))
            except Exception:  # decode() reports it, naming the row
                break
        return objects

    def to_primitive(self, manifest: str, payload: bytes) -> Any:
        """Decode to JSON-able plain values without the registered classes (for journal dumps).

        Nested registered values become ``{"$type": manifest, "$value": ...}``; Decimal, datetime,
        UUID become text, bytes base64 text. No upcasters are applied.
        """
        try:
            return to_primitive(payload)
        except Exception as exc:
            raise self._unpack_error(manifest, None, None, exc) from exc

    def _unpack_payload(self, payload: bytes) -> Any:
        """The stored form in ``payload``, nested values built (inlined in decode, decode_one)."""
        if (len(payload) < MAX_DEPTH and 0xFF not in payload) or is_shallow(payload):
            try:
                return _unpackb(payload, ext_hook=self._hook, strict_map_key=False)
            except Nested:
                pass
        return self._unpack_form(payload)

    def _unpack_form(self, payload: bytes) -> Any:
        """The stored form in ``payload``, nested values built, any payload (see _nesting)."""
        return resolve(unpack(payload), unpack, self._build)

    def _build_object(self, manifest: str, form: Any) -> Any:
        """A nested registered value (``_nesting.BuildObject``), its nested values built."""
        codec = self._direct.get(manifest)
        if codec is None:
            codec, form = self._upcast_nested(manifest, form)
        try:
            return codec.from_form(form)
        except Exception as exc:
            raise SerializationError(f"nested {codec.manifest!r}: {reason(exc)}") from exc

    def _upcast_nested(self, manifest: str, form: Any) -> tuple[Codec, Any]:
        name, version = parse_manifest(manifest)
        pairs = self._upcasters.apply(name, version, form, self._by_name, None, "")
        if len(pairs) != 1:
            raise SerializationError(
                f"upcasters turned nested {manifest!r} into {len(pairs)} values; a nested value "
                "must upcast to exactly one"
            )
        return pairs[0]

    def _decode_upcast(
        self, manifest: str, payload: bytes, persistence_id: str | None, sequence_nr: int | None
    ) -> list[object]:
        name, version = parse_manifest(manifest)
        if name not in self._by_name and not self._upcasters.knows(name):
            raise UnknownManifestError(manifest, persistence_id)
        try:
            form = self._unpack_payload(payload)
        except Exception as exc:
            raise self._unpack_error(manifest, persistence_id, sequence_nr, exc) from exc
        objects: list[object] = []
        where = _where(persistence_id, sequence_nr)
        upcast = self._upcasters.apply(name, version, form, self._by_name, persistence_id, where)
        for codec, fields in upcast:
            try:
                objects.append(codec.from_form(fields))
            except Exception as exc:
                raise self._unfit_error(codec.manifest, persistence_id, sequence_nr, exc) from exc
        return objects

    @staticmethod
    def _unpack_error(
        manifest: str, persistence_id: str | None, sequence_nr: int | None, exc: Exception
    ) -> SerializationError:
        if isinstance(exc, UnknownManifestError):
            return UnknownManifestError(exc.manifest, persistence_id)
        where = _where(persistence_id, sequence_nr)
        if isinstance(exc, SerializationError):
            return SerializationError(f"cannot decode {manifest!r}{where}: {exc}")
        return SerializationError(
            f"cannot decode {manifest!r}{where}: corrupt payload: {reason(exc)}"
        )

    @staticmethod
    def _unfit_error(
        manifest: str, persistence_id: str | None, sequence_nr: int | None, exc: Exception
    ) -> SerializationError:
        return SerializationError(
            f"cannot decode {manifest!r}{_where(persistence_id, sequence_nr)}: {reason(exc)}"
        )


default_serializer = Serializer()
"""The shared serializer that :func:`event_type` registers into."""


def event_type(
    name: str | None = None, *, version: int = 1
) -> Callable[[builtins.type[T]], builtins.type[T]]:
    """Class decorator registering the class in :data:`default_serializer` under the stable
    ``name``, at schema ``version``: ``@event_type("Deposited")``."""
    return default_serializer.type(name, version=version)
