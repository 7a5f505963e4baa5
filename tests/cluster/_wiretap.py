"""What went over the wire: messages delivered per subscribed subject, from the NATS server's
monitoring endpoint (``/connz?subs=detail``), for the subjects of one cluster."""

from __future__ import annotations

import json
import urllib.request

from cluster.testing import NatsServer


def subject_counts(server: NatsServer, cluster_name: str) -> dict[str, int]:
    """Messages delivered so far to each subscription under ``actorsys.<cluster_name>.``,
    summed per subject over every connection."""
    url = f"http://127.0.0.1:{server.monitor_port}/connz?subs=detail&limit=1024"
    with urllib.request.urlopen(url, timeout=10) as answer:
        document = json.load(answer)
    prefix = f"actorsys.{cluster_name}."
    counts: dict[str, int] = {}
    for connection in document.get("connections", []):
        for sub in connection.get("subscriptions_list_detail", []):
            subject = sub["subject"]
            if subject.startswith(prefix):
                counts[subject] = counts.get(subject, 0) + int(sub.get("msgs", 0))
    return counts
