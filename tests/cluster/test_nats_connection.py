"""The NATS connection: credentials from the URL or the settings, passwords never shown."""

from __future__ import annotations

import contextlib
import shutil
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


@contextlib.contextmanager
def nats_server(*options: str) -> Iterator[str]:
    """A NATS server started with ``options`` on a free port; yields its ``host:port``."""
    port = free_port()
    store = tempfile.mkdtemp(prefix="actorsys-nats-test-")
    process = subprocess.Popen(
        [str(find_nats_server()), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store,
         *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the NATS server did not start"
                time.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(store, ignore_errors=True)


@pytest.fixture
def secured_server() -> Iterator[str]:
    """A NATS server that wants user ``alice`` with password ``s3cret``."""
    with nats_server("--user", "alice", "--pass", "s3cret") as address:
        yield address


@pytest.fixture
def certificates(tmp_path: Path) -> Path:
    """A CA (``ca.pem``) and a server certificate it signed for 127.0.0.1 (``server.pem``,
    ``server.key``), made with the openssl command."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "1", "-subj", "/CN=actorsys-test-ca")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1")  # fmt: skip
    (tmp_path / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "1",
            "-extfile", "ext.cnf")  # fmt: skip
    return tmp_path


async def test_a_node_connects_over_tls_to_a_server_its_ca_vouches_for(
    certificates: Path, cluster_name: str
) -> None:
    server_tls = ("--tls", "--tlscert", str(certificates / "server.pem"),
                  "--tlskey", str(certificates / "server.key"))  # fmt: skip
    with nats_server(*server_tls) as address:
        trusted = Cluster(
            f"tls://{address}",
            node="n1",
            name=cluster_name,
            settings=ClusterSettings(tls_ca=certificates / "ca.pem"),
        )
        async with ActorSystem("tls", extensions=[trusted]):
            assert [m.node for m in trusted.members()] == ["n1"]
        untrusted = Cluster(
            f"tls://{address}", node="n2", settings=ClusterSettings(connect_timeout=1.0)
        )
        with pytest.raises(ClusterError) as raised:
            await ActorSystem("no-tls", extensions=[untrusted]).start()
        message = str(raised.value)
        assert message.startswith(f"cannot connect node 'n2' to NATS at tls://{address}: ")
        assert "CERTIFICATE_VERIFY_FAILED" in message


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


async def test_a_node_connects_with_a_token_from_the_url_or_the_settings(cluster_name: str) -> None:
    with nats_server("--auth", "t0ken") as address:
        in_url = Cluster(f"nats://t0ken@{address}", node="n1", name=cluster_name)
        async with ActorSystem("a", extensions=[in_url]):
            assert [m.node for m in in_url.members()] == ["n1"]
        assert "t0ken" not in repr(in_url)
        settings = ClusterSettings(token="t0ken")
        in_settings = Cluster(f"nats://{address}", node="n2", name=cluster_name, settings=settings)
        async with ActorSystem("b", extensions=[in_settings]):
            assert "n2" in [m.node for m in in_settings.members()]
