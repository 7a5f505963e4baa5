"""The base install (no nats-py): ``import cluster`` and local sharding work; the cluster on NATS
says which extra it needs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NO_NATS = textwrap.dedent(
    """
    import sys

    class NoNats:
        \"\"\"nats-py is not installed.\"\"\"

        def find_spec(self, name, path=None, target=None):
            if name == "nats" or name.startswith("nats."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoNats())
    """
)


def run_without_nats(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_NATS + textwrap.dedent(code)],
        capture_output=True,
        check=False,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_local_sharding_runs_without_nats_py() -> None:
    done = run_without_nats(
        """
        import sys
        from typing import Any

        import actorsys
        import cluster
        from actorsys import Actor, ActorSystem
        from cluster import ClusterSharding, ShardingEnvelope


        class Counter(Actor):
            def __init__(self, entity_id: str) -> None:
                super().__init__()
                self.count = 0

            def receive(self, message: Any) -> None:
                self.count += message
                self.context.sender.tell(self.count)


        async def main() -> None:
            async with ActorSystem("local") as system:
                sharding = ClusterSharding(system)
                region = sharding.start("Counter", Counter)
                region.tell(ShardingEnvelope("c-1", 2))
                print(await sharding.entity_ref("Counter", "c-1").ask(3))


        actorsys.run(main())
        print(sorted(m for m in sys.modules if m == "nats" or m.startswith("nats.")))
        """
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "5\n[]\n", "")


def test_the_cluster_on_nats_names_the_extra_it_needs_without_nats_py() -> None:
    done = run_without_nats(
        """
        try:
            from cluster import Cluster
        except ImportError as error:
            print(type(error).__name__, error)
        """
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "ImportError cluster.Cluster runs the cluster on NATS and needs nats-py, which is not "
        "installed: install the 'cluster' extra (pip install 'actorsys[cluster]'); sharding "
        "without a cluster (ClusterSharding in one process) works without it\n"
    )


def test_the_cluster_names_are_there_with_nats_py() -> None:
    import cluster

    assert cluster.Cluster.__name__ == "Cluster"
    assert {"Cluster", "ClusterSettings", "Member", "MemberLeft", "MemberUp"} <= set(dir(cluster))
