"""The error hierarchy drawn in ``persistence._errors`` is the one the package defines."""

from __future__ import annotations

import importlib
import pkgutil
import re

import persistence
from persistence import PersistenceError
from persistence import _errors as errors_module

_DRAWN_CLASS = re.compile(r"^    (?P<indent>(?:│   |    )*)(?:├── |└── )(?P<name>\w+)")


def drawn_tree() -> dict[str, str]:
    """``{class name: parent name}`` as drawn in the module docstring."""
    assert errors_module.__doc__ is not None
    lines = errors_module.__doc__.splitlines()
    root = lines.index("    PersistenceError")
    parents: dict[str, str] = {}
    path = ["PersistenceError"]
    for line in lines[root + 1 :]:
        match = _DRAWN_CLASS.match(line)
        if match is None:
            continue  # a description continued on the next line
        depth = len(match["indent"]) // 4 + 1
        del path[depth:]
        parents[match["name"]] = path[-1]
        path.append(match["name"])
    return parents


def defined_tree() -> dict[str, str]:
    """``{class name: parent name}`` of every PersistenceError subclass the package defines."""
    for module in pkgutil.walk_packages(persistence.__path__, "persistence."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    parents: dict[str, str] = {}
    todo = [PersistenceError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.split(".")[0] == "persistence":
                parents[sub.__name__] = cls.__name__
                todo.append(sub)
    return parents


def test_every_error_class_of_the_package_sits_in_the_drawn_tree_under_its_real_parent() -> None:
    drawn = drawn_tree()

    assert drawn == defined_tree()
    assert drawn["RecoveryTimedOutError"] == "RecoveryError"  # nesting is read from the drawing
    assert drawn["OffsetStoreError"] == "PersistenceError"  # and so are the last lines


def test_errors_that_carry_identifiers_expose_them_as_attributes() -> None:
    in_use = persistence.PersistenceIdInUseError("client-7", "/user/client-7")
    overflow = persistence.StashOverflowError("client-7", 100)
    out_of_range = persistence.DeleteEventsOutOfRangeError("client-7", 9, 4)

    assert (in_use.persistence_id, in_use.holder) == ("client-7", "/user/client-7")
    assert (overflow.persistence_id, overflow.capacity) == ("client-7", 100)
    assert (
        out_of_range.persistence_id,
        out_of_range.to_sequence_nr,
        out_of_range.last_sequence_nr,
    ) == ("client-7", 9, 4)
    assert str(out_of_range) == (
        "cannot delete events up to 9: persistence_id='client-7' has only reached sequence_nr=4"
    )
