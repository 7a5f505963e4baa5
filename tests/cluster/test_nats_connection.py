"""The NATS connection: credentials from the URL or the settings, passwords never shown."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest

from actorsys import ActorSystem
from cluster import Cluster, ClusterError, ClusterSettings
from cluster._nats import Redactor, redact_url
from cluster.testing import find_nats_server, free_port


def test_passwords_and_tokens_in_urls_are_redacted() -> None:
    assert redact_url("nats://alice:s3cret@10.0.0.1:4222") == "nats://alice:***@10.0.0.1:4222"
    assert redact_url("tls://tok3n@host:4222, nats://h2") == "tls://***@host:4222, nats://h2"
    assert redact_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
    redactor = Redactor(["s3cret", "tok3n"])
    assert redactor("auth failed for s3cret and tok3n at nats://bob:pw@h") == (
        "auth failed for *** and *** at nats://bob:***@h"
    )


def test_settings_and_the_extension_never_show_a_password() -> None:
    settings = ClusterSettings(user="alice", password="s3cret", token="tok3n")
    assert "s3cret" not in repr(settings)
    assert "tok3n" not in repr(settings)
    assert "password='***'" in repr(settings)
    cluster = Cluster("nats://alice:s3cret@127.0.0.1:4222", node="n1", settings=settings)
    assert repr(cluster) == "Cluster('nats://alice:***@127.0.0.1:4222', node='n1', name='actorsys')"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lease_ttl", 1.5, "ClusterSettings.lease_ttl must be a whole number of seconds >= 1"),
        ("heartbeat_ttl", 0, "ClusterSettings.heartbeat_ttl must be a whole number of seconds"),
        ("lease_renew_interval", 2.5, "ClusterSettings.lease_renew_interval must be positive"),
    ],
)
def test_settings_that_cannot_work_are_refused_when_built(
    field: str, value: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ClusterSettings(**{field: value})


@pytest.fixture
def secured_server() -> Iterator[str]:
    """A NATS server that wants user ``alice`` with password ``s3cret``; yields its address."""
    port = free_port()
    store = tempfile.mkdtemp(prefix="actorsys-nats-auth-")
    process = subprocess.Popen(
        [str(find_nats_server()), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store,
         "--user", "alice", "--pass", "s3cret"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the secured NATS server did not start"
                time.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        for path in sorted(Path(store).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        Path(store).rmdir()


async def test_a_node_connects_with_credentials_from_the_url_or_the_settings(
    secured_server: str, cluster_name: str
) -> None:
    in_url = Cluster(f"nats://alice:s3cret@{secured_server}", node="n1", name=cluster_name)
    async with ActorSystem("a", extensions=[in_url]):
        assert [m.node for m in in_url.members()] == ["n1"]
    in_settings = Cluster(
        f"nats://{secured_server}",
        node="n2",
        name=cluster_name,
        settings=ClusterSettings(user="alice", password="s3cret"),
    )
    async with ActorSystem("b", extensions=[in_settings]):
        assert "n2" in [m.node for m in in_settings.members()]


async def test_a_refused_connection_says_where_and_never_shows_the_password(
    secured_server: str, logs: list[MutableMapping[str, Any]]
) -> None:
    settings = ClusterSettings(connect_timeout=1.0)
    wrong = Cluster(f"nats://alice:wr0ng@{secured_server}", node="n1", settings=settings)
    with pytest.raises(ClusterError) as raised:
        await ActorSystem("c", extensions=[wrong]).start()
    message = str(raised.value)
    assert message.startswith(
        f"cannot connect node 'n1' to NATS at nats://alice:***@{secured_server}: "
    )
    assert (
        "check that the server runs and that the credentials and TLS settings are right" in message
    )
    assert "wr0ng" not in message
    assert "wr0ng" not in repr(logs)
