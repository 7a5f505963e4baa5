"""How public packages present their names: the public module, and imports on first use."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["expose", "import_on_first_use"]


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


def import_on_first_use(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for ``package``: each name of ``modules`` is imported
    from its module when first asked for, exposed (:func:`expose`) and kept in the package."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later lookups do not come here
        expose(package, namespace, [name])
        return value

    return __getattr__
