"""Per-class codecs: a registered class to its stored ``form`` (see ``_wire``) and back.

All reflection happens once, when the class is registered; the per-object paths only read
precomputed tuples and sets.

Map-shaped forms (dataclasses, NamedTuples, classes with ``to_fields``/``from_fields``) follow one
rule: a stored key that is not a constructor field is an error (register an upcaster that renames or
drops it), and a field missing from the stored map takes its default (an error if it has none).
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import inspect
import types
from collections.abc import Callable
from typing import Any, Final

from persistence._errors import SerializationError
from persistence.serialization._wire import manifest_of

_new: Final = object.__new__


def upcaster_label(name: str, version: int) -> str:
    """How messages name an upcaster: ``'Point'``, ``'Point' from version 2`` (version 1 is never
    spelled out, as in the manifest)."""
    return repr(name) if version == 1 else f"{name!r} from version {version}"


class FormError(ValueError):
    """A stored form does not fit the registered class; the message says how."""


class Codec(abc.ABC):
    """Converts instances of one registered class to and from their stored form.

    ``name`` and ``version`` are what the class is registered as; ``manifest`` records both and is
    what encoding writes (see ``_wire``).
    """

    __slots__ = ("cls", "manifest", "name", "version")

    def __init__(self, cls: type, name: str, version: int) -> None:
        self.cls = cls
        self.name = name
        self.version = version
        self.manifest = manifest_of(name, version)

    @abc.abstractmethod
    def to_form(self, obj: Any) -> Any:
        """The stored form (msgpack-ready) of ``obj``."""

    @abc.abstractmethod
    def from_form(self, form: Any) -> Any:
        """The object a stored form stands for."""


class _FieldsCodec(Codec):
    """A codec whose form is a map of constructor field names to values."""

    __slots__ = ("_name_set", "_names", "_required")

    def __init__(
        self,
        cls: type,
        name: str,
        version: int,
        names: tuple[str, ...],
        required: tuple[str, ...],
    ) -> None:
        super().__init__(cls, name, version)
        self._names = names
        self._name_set = frozenset(names)
        self._required = required

    def _check(self, form: Any) -> dict[str, Any]:
        if type(form) is not dict:
            raise FormError(f"expected a map of fields, got {type(form).__name__}")
        extra = [key for key in form if key not in self._name_set]
        if extra:
            raise FormError(
                f"stored field(s) {', '.join(map(repr, extra))} are not fields of "
                f"{self.cls.__qualname__}; register an upcaster for "
                f"{upcaster_label(self.name, self.version)} that renames or drops them"
            )
        missing = [name for name in self._required if name not in form]
        if missing:
            raise FormError(
                f"stored form lacks required field(s) {', '.join(map(repr, missing))} of "
                f"{self.cls.__qualname__}; give them defaults or register an upcaster for "
                f"{upcaster_label(self.name, self.version)} that adds them"
            )
        return form


class DataclassCodec(_FieldsCodec):
    """Dataclasses (frozen, slots or plain): the form holds the ``init`` fields."""

    __slots__ = ("_plain", "_slot_setters")

    def __init__(self, cls: type, name: str, version: int) -> None:
        fields = dataclasses.fields(cls)
        init_fields = [f for f in fields if f.init]
        names = tuple(f.name for f in init_fields)
        required = tuple(
            f.name
            for f in init_fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        super().__init__(cls, name, version, names, required)
        only_assigns = len(init_fields) == len(fields) and _constructor_only_assigns(cls)
        self._plain = only_assigns and _fields_in_dict(cls, names)
        self._slot_setters = _slot_setters(cls, names) if only_assigns else None

    def to_form(self, obj: Any) -> Any:
        if self._plain:
            state = obj.__dict__
            if state.keys() == self._name_set:
                return state
        return {name: getattr(obj, name) for name in self._names}

    def from_form(self, form: Any) -> Any:
        # The fast paths give the same result as cls(**form), which would only assign the
        # fields (see _constructor_only_assigns); skipping __init__ halves the construction time.
        if type(form) is dict:
            setters = self._slot_setters
            if setters is not None:
                if len(form) == len(setters):  # and every field found: exactly the fields
                    obj: Any = _new(self.cls)
                    try:
                        for name, assign in setters:
                            assign(obj, form[name])
                    except KeyError:
                        pass  # another key instead: _check says which
                    else:
                        return obj
            elif form.keys() == self._name_set:
                if self._plain:
                    obj = _new(self.cls)
                    obj.__dict__.update(form)
                    return obj
                return self.cls(**form)
        return self.cls(**self._check(form))


def _constructor_only_assigns(cls: type) -> bool:
    """Whether ``cls(**fields)`` just assigns each field to the instance, in its ``__dict__`` or
    its slot (which of the two: :func:`_fields_in_dict`, :func:`_slot_setters`).

    True for an ordinary dataclass: generated ``__init__``, no ``__post_init__``, no custom
    ``__new__`` or ``__setattr__`` (unless frozen: frozen ``__init__`` bypasses it). Anything
    unusual answers False and takes the ``cls(**fields)`` path.
    """
    klass: Any = cls  # mypy cannot compare the slot wrappers
    if klass.__new__ is not object.__new__ or getattr(cls, "__post_init__", None) is not None:
        return False
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not (params.frozen or klass.__setattr__ is object.__setattr__):
        return False
    owner = next((c for c in cls.__mro__ if "__init__" in vars(c)), object)
    init = vars(owner).get("__init__")
    return "__dataclass_fields__" in vars(owner) and _generated(init)


def _fields_in_dict(cls: type, names: tuple[str, ...]) -> bool:
    """Whether instances have a ``__dict__`` and no data descriptor (slot, property,
    descriptor-typed field) stands behind a field name: every field lands in the ``__dict__``."""
    if not getattr(cls, "__dictoffset__", 0):
        return False
    for name in names:
        attr = inspect.getattr_static(cls, name, None)
        if hasattr(type(attr), "__set__") or hasattr(type(attr), "__delete__"):
            return False
    return True


def _slot_setters(
    cls: type, names: tuple[str, ...]
) -> tuple[tuple[str, Callable[[Any, Any], None]], ...] | None:
    """``(name, assign)`` per field if every field is a slot (``assign`` is the slot's setter,
    where the generated ``__init__`` stores the field); None otherwise."""
    setters: list[tuple[str, Callable[[Any, Any], None]]] = []
    for name in names:
        attr = inspect.getattr_static(cls, name, None)
        if type(attr) is not types.MemberDescriptorType:
            return None
        setters.append((name, attr.__set__))
    return tuple(setters)


def _generated(function: object) -> bool:
    # dataclasses builds __init__ with exec(), so its code has no source file
    code = getattr(function, "__code__", None)
    return code is not None and code.co_filename == "<string>"


class NamedTupleCodec(_FieldsCodec):
    """``typing.NamedTuple`` and ``collections.namedtuple`` classes."""

    __slots__ = ()

    def __init__(self, cls: type, name: str, version: int) -> None:
        named_tuple: Any = cls
        names = tuple(named_tuple._fields)
        defaults: dict[str, Any] = getattr(cls, "_field_defaults", {})
        required = tuple(n for n in names if n not in defaults)
        super().__init__(cls, name, version, names, required)

    def to_form(self, obj: Any) -> Any:
        return dict(zip(self._names, obj, strict=True))

    def from_form(self, form: Any) -> Any:
        if type(form) is dict and form.keys() == self._name_set:
            return self.cls(**form)
        return self.cls(**self._check(form))


class EnumCodec(Codec):
    """Enum members, stored as their value."""

    __slots__ = ()

    def to_form(self, obj: Any) -> Any:
        return obj.value

    def from_form(self, form: Any) -> Any:
        return self.cls(form)


class HookCodec(Codec):
    """Classes defining ``to_fields(self) -> dict`` and classmethod ``from_fields(cls, dict)``."""

    __slots__ = ()

    def to_form(self, obj: Any) -> Any:
        form = obj.to_fields()
        if type(form) is not dict:
            raise FormError(
                f"{self.cls.__qualname__}.to_fields() must return a dict, "
                f"not {type(form).__qualname__}"
            )
        return form

    def from_form(self, form: Any) -> Any:
        if type(form) is not dict:
            raise FormError(f"expected a map of fields, got {type(form).__name__}")
        hooked: Any = self.cls
        return hooked.from_fields(form)


def has_hooks(cls: type) -> bool:
    """Whether ``cls`` customises its stored form with ``to_fields``/``from_fields``."""
    return callable(getattr(cls, "to_fields", None)) and callable(getattr(cls, "from_fields", None))


def registrable(cls: type) -> bool:
    """Whether :func:`make_codec` accepts ``cls``."""
    return (
        issubclass(cls, enum.Enum)
        or has_hooks(cls)
        or dataclasses.is_dataclass(cls)
        or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
    )


def make_codec(cls: type, name: str, version: int) -> Codec:
    """The codec for ``cls`` registered as ``name`` at ``version``, or SerializationError if it
    cannot be registered."""
    if issubclass(cls, enum.Enum):
        return EnumCodec(cls, name, version)
    if has_hooks(cls):
        return HookCodec(cls, name, version)
    if dataclasses.is_dataclass(cls):
        return DataclassCodec(cls, name, version)
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return NamedTupleCodec(cls, name, version)
    raise SerializationError(
        f"cannot register {cls.__module__}.{cls.__qualname__}: only dataclasses, NamedTuples, "
        "enums and classes with to_fields()/from_fields() can be registered"
    )
