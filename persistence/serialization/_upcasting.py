"""Upcasters: kept by stored name and schema version, and the chain from a stored version up to
the registered one.

An upcaster registered for ``(name, version)`` rewrites the stored fields of ``name`` at that
version into ``(manifest, fields)`` pairs: its own name (no version) for the next version, another
name for a rename (version 1 of it, or the version its manifest gives, e.g. ``"Deposited#3"``),
several pairs for a split, none for a drop. Decoding a manifest at the registered version never
gets here, so an upcaster runs once per version step of an old event and never on a current one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from persistence._errors import SerializationError, UnknownManifestError
from persistence.serialization._codecs import Codec, FormError
from persistence.serialization._codecs import upcaster_label as label
from persistence.serialization._diagnose import qualified_name
from persistence.serialization._nesting import depth_reason
from persistence.serialization._wire import (
    MAX_VERSION,
    looks_versioned,
    manifest_of,
    parse_manifest,
)

Upcaster = Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]]]


def check_version(version: object, what: str) -> None:
    """Raise SerializationError unless ``version`` is a schema version (an int, 1..MAX_VERSION)."""
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise SerializationError(
            f"{what}: the version must be an int from 1 to {MAX_VERSION}, got {version!r}"
        )


def check_name(name: str, what: str, fix: str) -> None:
    """Raise SerializationError if ``name`` ends in ``#`` and digits (see ``_wire``). ``fix`` is
    formatted with the ``name`` and ``version`` such a manifest stands for, when it is a version."""
    if not looks_versioned(name):
        return
    stored, version = parse_manifest(name)
    if version == 1:
        fix = "choose a name without that ending"
    else:
        fix = fix.format(name=stored, version=version)
    raise SerializationError(
        f"{what}: a name never ends in '#' and digits, which manifests use for the schema "
        f"version; {fix}"
    )


def registration_hint(codec: Codec, version: int) -> str:
    """The fix for an upcaster from ``version`` that ``codec`` would never let run."""
    cls = codec.cls.__name__
    return (
        f"register {cls} at version {version + 1} (serializer.register({cls}, "
        f'"{codec.name}", version={version + 1}) or @event_type("{codec.name}", '
        f"version={version + 1})) so that events stored at version {version} are upcast to it"
    )


def reason(exc: Exception) -> str:
    """The message of a decoding failure, without a traceback's worth of detail."""
    if isinstance(exc, FormError | SerializationError):
        return str(exc)
    return depth_reason(exc) or f"{type(exc).__name__}: {exc}"


class Upcasters:
    """The registered upcasters of one serializer, by name then by the version they start from."""

    __slots__ = ("_by_name",)

    def __init__(self) -> None:
        self._by_name: dict[str, dict[int, Upcaster]] = {}

    def add(self, name: str, version: int, upcaster: Upcaster, codec: Codec | None) -> None:
        """Keep ``upcaster`` for ``(name, version)``; ``codec``: what ``name`` is registered as."""
        if not isinstance(name, str) or not name:
            raise SerializationError(
                f"cannot add an upcaster for {name!r}: the name must be a non-empty str"
            )
        check_version(version, f"cannot add an upcaster for {name!r}")
        check_name(
            name,
            f"cannot add an upcaster for {name!r}",
            "give the version apart: add_upcaster({name!r}, upcaster, from_version={version})",
        )
        versions = self._by_name.get(name, {})
        if version in versions:
            raise SerializationError(
                f"an upcaster for {label(name, version)} is already registered"
            )
        if codec is not None and version >= codec.version:
            raise SerializationError(
                f"cannot add an upcaster for {label(name, version)}: "
                f"{qualified_name(codec.cls)} is registered as {name!r} at version "
                f"{codec.version}, so it would never run; {registration_hint(codec, version)}"
            )
        self._by_name.setdefault(name, {})[version] = upcaster

    def check_registration(self, codec: Codec) -> None:
        """Raise SerializationError if registering ``codec`` would leave an upcaster unused."""
        versions = self._by_name.get(codec.name)
        if not versions:
            return
        version = max(versions)
        if version >= codec.version:
            raise SerializationError(
                f"cannot register {qualified_name(codec.cls)} as {codec.name!r} at version "
                f"{codec.version}: an upcaster for {label(codec.name, version)} is registered and "
                f"would never run; {registration_hint(codec, version)}"
            )

    def knows(self, name: str) -> bool:
        """Whether any upcaster is registered for ``name``."""
        return name in self._by_name

    def apply(
        self,
        name: str,
        version: int,
        form: Any,
        codecs: Mapping[str, Codec],
        persistence_id: str | None,
        where: str,
    ) -> list[tuple[Codec, Any]]:
        """The codecs and current fields that ``form``, stored as ``name`` at ``version``, stands
        for: each upcaster from the stored version up to the registered one runs once.

        ``codecs`` are the registered codecs by name; ``where`` names the event in messages.
        Iterative, so a long history of versions takes no stack.
        """
        result: list[tuple[Codec, Any]] = []
        # (name, version, fields, the steps that led here): depth first, pairs in their order
        pending: list[tuple[str, int, Any, tuple[tuple[str, int], ...]]] = [
            (name, version, form, ())
        ]
        while pending:
            name, version, form, chain = pending.pop()
            codec = codecs.get(name)
            if codec is not None and version == codec.version:
                result.append((codec, form))
                continue
            produced = self._run(name, version, form, codec, persistence_id, where)
            chain = (*chain, (name, version))
            for manifest, fields in reversed(produced):
                step = (name, version + 1) if manifest == name else parse_manifest(manifest)
                if step in chain:
                    cycle = " -> ".join(manifest_of(*s) for s in (*chain, step))
                    raise SerializationError(f"upcasters form a cycle: {cycle}")
                pending.append((*step, fields, chain))
        return result

    def _run(
        self,
        name: str,
        version: int,
        form: Any,
        codec: Codec | None,
        persistence_id: str | None,
        where: str,
    ) -> list[tuple[str, Any]] | tuple[tuple[str, Any], ...]:
        """The pairs the upcaster for ``(name, version)`` turns ``form`` into, checked."""
        upcaster = self._by_name.get(name, {}).get(version)
        if upcaster is None:
            raise _no_upcaster(name, version, codec, persistence_id, where)
        try:
            produced: Any = upcaster(form)
        except Exception as exc:
            raise SerializationError(
                f"upcaster for {label(name, version)} failed{where}: {reason(exc)}"
            ) from exc
        if not isinstance(produced, list | tuple) or not all(
            isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)
            for pair in produced
        ):
            raise SerializationError(
                f"upcaster for {label(name, version)} must return a list of (manifest, fields) "
                f"pairs, got {produced!r:.100}"
            )
        return produced


def _no_upcaster(
    name: str, version: int, codec: Codec | None, persistence_id: str | None, where: str
) -> SerializationError:
    manifest = manifest_of(name, version)
    if codec is None:
        return UnknownManifestError(manifest, persistence_id)
    if version > codec.version:
        return SerializationError(
            f"cannot decode {manifest!r}{where}: it is version {version} of {name!r}, newer than "
            f"{qualified_name(codec.cls)} (registered at version {codec.version}); was it "
            "written by a newer release of the application?"
        )
    return SerializationError(
        f"cannot decode {manifest!r}{where}: it is version {version} of {name!r} and "
        f"{qualified_name(codec.cls)} is registered at version {codec.version}, but no upcaster "
        f"for {label(name, version)} is registered; add one with serializer.add_upcaster("
        f"{name!r}, upcaster, from_version={version})"
    )
