"""``python -m cluster status NATS_URL [--name NAME] [--type TYPE] [--json]``.

Prints the cluster's nodes, its shards per node and the entities per shard (see
:mod:`cluster._status`). Exits 0 after printing, 1 when NATS cannot be reached or no cluster of
that name exists (one line on stderr, passwords masked), 2 on a malformed command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from cluster._cluster import ClusterSettings
from cluster._errors import ClusterError
from cluster._status import as_json, format_status, read_status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cluster",
        description="Inspect an actorsys cluster on NATS.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser(
        "status",
        help="nodes, shards per node, entities per shard",
        description="Nodes, shards per node and entities per shard of a running cluster.",
    )
    status.add_argument(
        "url",
        metavar="NATS_URL",
        help="the NATS server(s): nats://[user:password@]host:port, comma-separated for several",
    )
    status.add_argument("--name", default="actorsys", help="the cluster name (default: actorsys)")
    status.add_argument("--type", dest="type_name", help="only the shards of this entity type")
    status.add_argument("--creds", help="a NATS credentials file")
    status.add_argument("--tls-ca", help="the CA certificate to trust (TLS)")
    status.add_argument("--tls-cert", help="a client certificate (TLS)")
    status.add_argument("--tls-key", help="the client certificate's key (TLS)")
    status.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for NATS (default 5)"
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    servers = [url.strip() for url in args.url.split(",") if url.strip()]
    settings = ClusterSettings(
        creds_file=args.creds, tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key
    )
    try:
        status = asyncio.run(
            read_status(
                servers,
                name=args.name,
                settings=settings,
                type_name=args.type_name,
                timeout=args.timeout,
            )
        )
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps(as_json(status), indent=2))
    else:
        print(format_status(status))
    return 0


if __name__ == "__main__":
    sys.exit(main())
