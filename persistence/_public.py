"""Public names show their public module: what each public package's ``__init__`` calls."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping

__all__ = ["expose"]


def expose(package: str, namespace: Mapping[str, object], names: Iterable[str]) -> None:
    """Give the classes and functions among ``names`` that ``package``'s private modules define
    ``__module__ = package`` (as trio does), so that help(), IDEs, tracebacks and pickles name
    them where users import them from: ``persistence.PersistentActor``, not
    ``persistence._persistent_actor.PersistentActor``.

    Names not (yet) in ``namespace`` (lazily imported ones) are left for a later call; objects
    from other packages keep theirs.
    """
    private = f"{package}._"
    for name in names:
        obj = namespace.get(name)
        if (
            (isinstance(obj, type) or inspect.isfunction(obj))
            and obj.__name__ == name
            and obj.__module__.startswith(private)
        ):
            obj.__module__ = package
