"""How the persistence packages present themselves: layers that point one way at run time
(the journals, snapshot stores, serialization and queries do not import the actor system), and
public classes and functions that name the public module they are imported from."""

from __future__ import annotations

import importlib
import inspect
import pickle
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import cluster
import cluster.testing
import persistence
import persistence.journal
import persistence.query
import persistence.serialization
import persistence.snapshot
import persistence.testing

ROOT = Path(__file__).resolve().parent.parent

PUBLIC_PACKAGES = [
    cluster,
    cluster.testing,
    persistence,
    persistence.journal,
    persistence.query,
    persistence.serialization,
    persistence.snapshot,
    persistence.testing,
]


def imported_after(statement: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after ``statement``, in a fresh interpreter."""
    code = f"{statement}\nimport sys\nprint(' '.join({{m.split('.')[0] for m in sys.modules}}))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(done.stdout.split())


@pytest.mark.parametrize(
    "package",
    [
        "persistence",
        "persistence.journal",
        "persistence.snapshot",
        "persistence.serialization",
        "persistence.query",
    ],
)
def test_importing_a_package_below_the_actor_bridge_does_not_import_actorsys(package: str) -> None:
    modules = imported_after(f"import {package}")

    assert "persistence" in modules
    assert "actorsys" not in modules


def test_the_names_that_need_the_actor_system_are_imported_on_first_use() -> None:
    assert "actorsys" in imported_after("from persistence import PersistentActor")
    assert "actorsys" in imported_after("import persistence; persistence.Persistence")
    assert "actorsys" in imported_after("from persistence import *")


def test_every_name_of_persistence_all_is_there_and_listed_by_dir() -> None:
    for name in persistence.__all__:
        assert getattr(persistence, name) is not None
        assert name in dir(persistence)
    with pytest.raises(AttributeError) as raised:
        persistence.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
    assert str(raised.value) == "module 'persistence' has no attribute 'NoSuchName'"


@pytest.mark.parametrize("package", PUBLIC_PACKAGES, ids=lambda package: package.__name__)
def test_every_public_class_and_function_names_a_public_module_that_exports_it(
    package: ModuleType,
) -> None:
    checked = 0
    for name in package.__all__:
        value = getattr(package, name)
        if not (isinstance(value, type) or inspect.isfunction(value)):
            continue
        module = value.__module__
        assert not any(part.startswith("_") for part in module.split(".")), f"{name}: {module}"
        public = importlib.import_module(module)
        assert name in public.__all__, f"{name}: {module}"
        assert getattr(public, name) is value
        checked += 1
    assert checked > 0


def test_a_class_shows_the_package_it_belongs_to_wherever_it_is_imported_from() -> None:
    assert persistence.PersistentActor.__module__ == "persistence"
    assert persistence.Persistence.__module__ == "persistence"
    assert persistence.JournalError.__module__ == "persistence"
    assert persistence.SnapshotMetadata.__module__ == "persistence.snapshot"
    assert persistence.Serializer.__module__ == "persistence.serialization"
    assert persistence.testing.InMemoryJournal.__module__ == "persistence.journal"
    assert persistence.testing.JournalConformance.__module__ == "persistence.testing"
    assert repr(persistence.journal.SqliteJournal) == "<class 'persistence.journal.SqliteJournal'>"
    assert persistence.open_journal.__module__ == "persistence"


def test_a_cluster_class_shows_the_cluster_package_even_before_it_is_first_used() -> None:
    assert repr(cluster.ClusterSharding) == "<class 'cluster.ClusterSharding'>"
    assert cluster.ShardingEnvelope.__module__ == "cluster"
    assert cluster.default_shard_id.__module__ == "cluster"
    assert cluster.ShardingBufferFullError.__module__ == "cluster"
    code = "import cluster; print(cluster.Cluster.__module__, cluster.MemberUp.__module__)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout == "cluster cluster\n"
    envelope = cluster.ShardingEnvelope("acc-1", 10)
    assert pickle.loads(pickle.dumps(envelope)) == envelope


def test_errors_and_records_still_pickle_under_their_public_names() -> None:
    error = persistence.JournalClosedError("cannot write events: the journal is closed")
    record = persistence.journal.PersistentRecord("acc-1", 3, "M", b"x", "w", 1)

    assert type(pickle.loads(pickle.dumps(error))) is persistence.JournalClosedError
    assert pickle.loads(pickle.dumps(record)) == record
    assert b"persistence.journal" in pickle.dumps(record)
