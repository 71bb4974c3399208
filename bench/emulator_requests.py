"""Small emulator requests against a static-file HTTPS server on the same machine.

Starts an emulator with a 2,000-incident tenant and times, with one keep-alive
``requests.Session``:

* one small request: ``GET /v1.0/security/incidents/{id}``;
* one page: ``GET /v1.0/security/incidents?$top=50`` (and the same with ``$expand=alerts``);
* the legacy API's page of 50: ``GET /api/incidents?$top=50``.

Each is compared with a static-file HTTPS server (the standard library's ``ThreadingHTTPServer``
with TLS from the emulator's own ``write_tls_files``, Nagle off, HTTP/1.1 keep-alive) serving the
very bytes the emulator answered, so both replies have the same size. The figure is the ratio of
the medians, measured in the same run; the target is at most 3x.

To compare with an older commit, check it out in a worktree and point ``PYTHONPATH`` at it (the
script starts the emulator from the tree it imported)::

    git worktree add /tmp/before <commit>
    PYTHONPATH=/tmp/before .venv/bin/python bench/emulator_requests.py
    .venv/bin/python bench/emulator_requests.py
"""

from __future__ import annotations

import argparse
import os
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

import airflow_provider_mtp
from airflow_provider_mtp.emulator import DefenderEmulator
from airflow_provider_mtp.emulator.tls import write_tls_files

GRAPH = "https://graph.microsoft.com"
MTP = "https://api.security.microsoft.com"
NOW = "2026-06-15T12:00:00Z"


def token(emulator: DefenderEmulator, audience: str) -> str:
    reply = requests.post(
        f"{emulator.url}/{emulator.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "scope": f"{audience}/.default",
        },
        verify=emulator.ca_bundle,
        timeout=30,
    )
    reply.raise_for_status()
    return str(reply.json()["access_token"])


@contextmanager
def static_server(bodies: dict[str, bytes], tls_dir: Path) -> Iterator[tuple[str, str]]:
    """An HTTPS server answering ``GET /<name>`` with ``bodies[name]``; yields (origin, CA path).

    :param bodies: reply bodies by path name.
    :param tls_dir: where its certificate goes.
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # What any static server does (nginx's tcp_nodelay): no Nagle stall on small replies.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            body = bodies[self.path.lstrip("/")]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    tls = write_tls_files(tls_dir, hostnames=["127.0.0.1"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tls.certificate), str(tls.private_key))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", str(tls.ca_bundle)
    finally:
        server.shutdown()
        server.server_close()


def timings(
    ours: tuple[requests.Session, str], theirs: tuple[requests.Session, str], repeat: int
) -> tuple[list[float], list[float]]:
    """Seconds per call for each (session, URL), alternating calls so both see the same machine load."""
    spent: tuple[list[float], list[float]] = ([], [])
    for round_number in range(repeat + 5):
        for (session, url), times in zip((ours, theirs), spent, strict=True):
            started = time.perf_counter()
            reply = session.get(url, timeout=60)
            elapsed = time.perf_counter() - started
            reply.raise_for_status()
            # The first calls warm up connections and caches.
            if round_number >= 5:
                times.append(elapsed)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    # ``python -m`` puts the working directory first on the emulator's path: run it from the tree
    # this script imported, so PYTHONPATH=<worktree> measures that tree whatever the directory.
    tree = Path(airflow_provider_mtp.__file__).resolve().parents[1]
    os.chdir(tree)
    print(f"emulator from {tree}")
    with (
        DefenderEmulator(
            seed=7, now=NOW, incidents=args.incidents, days=1, events_per_day=10, quotas=False
        ) as emulator,
        tempfile.TemporaryDirectory() as tls_dir,
    ):
        graph = requests.Session()
        graph.verify = emulator.ca_bundle
        graph.trust_env = False
        graph.headers["Authorization"] = f"Bearer {token(emulator, GRAPH)}"
        legacy = requests.Session()
        legacy.verify = emulator.ca_bundle
        legacy.trust_env = False
        legacy.headers["Authorization"] = f"Bearer {token(emulator, MTP)}"
        first = graph.get(f"{emulator.url}/v1.0/security/incidents", params={"$top": "1"}, timeout=60)
        first.raise_for_status()
        incident_id = first.json()["value"][0]["id"]
        cases: dict[str, tuple[requests.Session, str]] = {
            "GET one incident (Graph)": (graph, f"/v1.0/security/incidents/{incident_id}"),
            "page of 50 (Graph, $top=50)": (graph, "/v1.0/security/incidents?$top=50"),
            "page of 50 with alerts (Graph)": (graph, "/v1.0/security/incidents?$top=50&$expand=alerts"),
            "page of 50 (legacy, $top=50)": (legacy, "/api/incidents?$top=50"),
        }
        bodies = {}
        for number, (session, path) in enumerate(cases.values()):
            reply = session.get(f"{emulator.url}{path}", timeout=60)
            reply.raise_for_status()
            bodies[str(number)] = reply.content
        with static_server(bodies, Path(tls_dir)) as (origin, ca_bundle):
            static = requests.Session()
            static.verify = ca_bundle
            static.trust_env = False
            print(f"{args.incidents} incidents; medians of {args.repeat} calls on one keep-alive session\n")
            print(
                f"| {'request':32} | {'bytes':>7} | {'emulator ms':>11} | {'static ms':>9} | {'ratio':>6} |"
            )
            print(f"|{'-' * 34}|{'-' * 9}|{'-' * 13}|{'-' * 11}|{'-' * 8}|")
            for number, (name, (session, path)) in enumerate(cases.items()):
                ours, theirs = timings(
                    (session, f"{emulator.url}{path}"), (static, f"{origin}/{number}"), args.repeat
                )
                mine, base = statistics.median(ours), statistics.median(theirs)
                size = len(bodies[str(number)])
                print(
                    f"| {name:32} | {size:7d} | {mine * 1000:11.2f} | {base * 1000:9.2f} | {mine / base:5.1f}x |"
                )
        print("\ntarget: ratio <= 3x (issue 10, Must show 5)")


if __name__ == "__main__":
    main()
