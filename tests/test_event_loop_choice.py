"""``actorsys.run`` picks uvloop where it is installed and asyncio's own loop where it is not
(uvloop is a dependency only on platforms where it builds), and changes the garbage collector's
threshold only when asked to."""

from __future__ import annotations

import asyncio
import gc
import sys
import tomllib
from pathlib import Path

import pytest
import uvloop
from packaging.requirements import Requirement

import actorsys

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


async def loop_type() -> type[asyncio.AbstractEventLoop]:
    async with actorsys.ActorSystem("loop-check"):
        return type(asyncio.get_running_loop())


def test_run_uses_uvloop_when_it_is_installed() -> None:
    assert issubclass(actorsys.run(loop_type()), uvloop.Loop)


def test_run_falls_back_to_the_asyncio_loop_when_uvloop_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError

    used = actorsys.run(loop_type())

    assert issubclass(used, asyncio.BaseEventLoop)
    assert not issubclass(used, uvloop.Loop)


def test_run_uses_the_asyncio_loop_when_asked_to() -> None:
    assert not issubclass(actorsys.run(loop_type(), use_uvloop=False), uvloop.Loop)


@pytest.mark.parametrize(
    ("platform", "implementation", "installed"),
    [
        ("linux", "CPython", True),
        ("darwin", "CPython", True),
        ("win32", "CPython", False),
        ("cygwin", "CPython", False),
        ("linux", "PyPy", False),
    ],
)
def test_uvloop_is_a_dependency_only_where_it_builds(
    platform: str, implementation: str, installed: bool
) -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    [uvloop_requirement] = [
        Requirement(spec) for spec in dependencies if Requirement(spec).name == "uvloop"
    ]
    assert uvloop_requirement.marker is not None
    environment = {"sys_platform": platform, "platform_python_implementation": implementation}

    assert uvloop_requirement.marker.evaluate(environment) is installed


async def gc_thresholds() -> tuple[int, int, int]:
    async with actorsys.ActorSystem("gc-check"):
        return gc.get_threshold()


def test_run_leaves_the_garbage_collector_alone_by_default() -> None:
    before = gc.get_threshold()
    assert actorsys.run(gc_thresholds()) == before
    assert gc.get_threshold() == before


def test_run_with_gc_threshold_sets_the_youngest_generation_for_the_run_only() -> None:
    before = gc.get_threshold()
    assert actorsys.run(gc_thresholds(), gc_threshold=50_000) == (50_000, *before[1:])
    assert gc.get_threshold() == before


@pytest.mark.parametrize("threshold", [0, -5, True, 2.5])
def test_run_refuses_a_gc_threshold_that_is_not_a_positive_int(threshold: object) -> None:
    main = gc_thresholds()
    with pytest.raises(
        ValueError, match=rf"^gc_threshold must be a positive int or None, got {threshold!r}$"
    ):
        actorsys.run(main, gc_threshold=threshold)  # type: ignore[arg-type]
    main.close()
