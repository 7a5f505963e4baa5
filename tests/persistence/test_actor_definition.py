"""Mistakes in the definition of a persistent actor are refused when its class is created."""

from __future__ import annotations

from typing import Any

import pytest

from actorsys import Actor
from persistence import AtLeastOnceDelivery, PersistenceConfigError, PersistentActor


def test_overriding_receive_in_a_persistent_actor_is_refused_at_class_creation() -> None:
    with pytest.raises(PersistenceConfigError) as caught:

        class Overriding(PersistentActor):
            persistence_id = "overriding"

            def receive(self, message: Any) -> None:
                pass

    assert str(caught.value) == (
        "test_overriding_receive_in_a_persistent_actor_is_refused_at_class_creation.<locals>."
        "Overriding overrides receive(), which a PersistentActor needs for persisting: handle "
        "commands in receive_command() instead (and replayed events in receive_recover())"
    )


def test_a_receive_inherited_from_a_mixin_before_persistent_actor_is_refused_too() -> None:
    class Greeting(Actor):
        def receive(self, message: Any) -> None:
            pass

    with pytest.raises(PersistenceConfigError, match=r"\.Mixed overrides receive\(\)"):

        class Mixed(Greeting, PersistentActor):
            persistence_id = "mixed"


def test_overriding_receive_below_at_least_once_delivery_is_refused_too() -> None:
    with pytest.raises(PersistenceConfigError, match=r"\.Delivering overrides receive\(\)"):

        class Delivering(AtLeastOnceDelivery):
            persistence_id = "delivering"

            def receive(self, message: Any) -> None:
                pass

