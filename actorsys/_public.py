"""Public classes and functions show the public module that exports them.

``actorsys.ActorRef.__module__`` is ``"actorsys"``, not the private module that defines it, so
help(), reprs, tracebacks and IDEs show the name users import (trio does the same). It is set
after definition: type checkers still follow the imports. Pickle finds a class or function by
``__module__`` and ``__qualname__``, which the public module exports, so pickling keeps working.
``typing.get_type_hints`` looks a class's string annotations up in the namespace of
``__module__``: they are resolved first, where the class is defined.
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Iterable, Mapping
from typing import Any


def publish(module_name: str, namespace: Mapping[str, Any], names: Iterable[str]) -> None:
    """Show the classes and functions ``names`` of ``namespace`` (the public module's globals)
    that a private module of ``module_name``'s package defines as members of ``module_name``."""
    for name in names:
        obj = namespace[name]
        if not (isinstance(obj, type) or inspect.isfunction(obj)):
            continue  # values, type aliases
        if not _is_private(obj.__module__, module_name) or obj.__qualname__ != name:
            continue  # defined in a public module (or another package), or exported renamed
        own = inspect.get_annotations(obj) if isinstance(obj, type) else None
        if own:
            # Names imported only for type checking are found in the public module.
            globalns = {**namespace, **vars(sys.modules[obj.__module__])}
            hints = typing.get_type_hints(obj, globalns=globalns, include_extras=True)
            obj.__annotations__ = {key: hints[key] for key in own}
        obj.__module__ = module_name


def _is_private(module: str, public: str) -> bool:
    """Whether ``module`` is a private module of the package of ``public``."""
    package, _, rest = module.partition(".")
    return package == public.partition(".")[0] and any(
        part.startswith("_") for part in rest.split(".")
    )
