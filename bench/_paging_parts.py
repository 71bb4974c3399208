"""The contenders of bench/paging.py: the bare ``requests`` floors, the provider's hooks, and the
peers' worker processes (bench/_peers.py in ``.bench-venv``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

from airflow_provider_mtp.emulator import DefenderEmulator

RESULTS = Path(__file__).resolve().parent / "results"
GRAPH = "https://graph.microsoft.com/.default"
LEGACY = "https://api.security.microsoft.com/.default"
LEGACY_TOP = 100
REPLAY = "requests, MTPHook's URLs (round 1)"
#: Seconds a peer worker may take to start (imports, token, first call).
PEER_START_S = 120.0

Outcome = dict[str, float]


@dataclass
class Contender:
    """One way to list a collection; ``run`` returns its seconds, CPU seconds and item count."""

    resource: str
    api: str
    name: str
    run: Callable[[], Outcome]
    warm: Callable[[], Any] = lambda: None
    floor: bool = False
    targeted: bool = False
    #: Measured in the first round only (a costly explanation, not a contender).
    once: bool = False

    @property
    def key(self) -> str:
        return f"{self.resource}/{self.api}/{self.name}"


def timed(count: Callable[[], int]) -> Outcome:
    wall, cpu = time.perf_counter(), time.process_time()
    items = count()
    return {"seconds": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "count": items}


@dataclass
class BareClient:
    """The floor: one ``requests.Session`` and a token fetched beforehand."""

    emulator: DefenderEmulator
    scope: str
    session: requests.Session = field(default_factory=requests.Session)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Not from the environment: REQUESTS_CA_BUNDLE would replace the emulator's CA.
        self.session.trust_env = False
        self.session.verify = self.emulator.ca_bundle

    def token(self) -> None:
        emu = self.emulator
        reply = self.session.post(
            f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
                "scope": self.scope,
            },
            timeout=60,
        )
        reply.raise_for_status()
        self.headers = {"Authorization": f"Bearer {reply.json()['access_token']}"}

    def get(self, url: str) -> dict[str, Any]:
        reply = self.session.get(url, headers=self.headers, timeout=60)
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body

    def next_links(self, path: str) -> int:
        """Graph: follow ``@odata.nextLink`` from the collection's first page."""
        url: str | None = f"{self.emulator.url}{path}"
        items = 0
        while url:
            body = self.get(url)
            items += len(body["value"])
            url = body.get("@odata.nextLink")
        return items

    def skip_pages(self, *, alerts: bool = False) -> int:
        """Legacy: ``$top`` + ``$skip`` until a short page (the MTP API has no nextLink)."""
        items = skip = 0
        while True:
            page = self.get(f"{self.emulator.url}/api/incidents?$top={LEGACY_TOP}&$skip={skip}")["value"]
            items += sum(len(i.get("alerts") or []) for i in page) if alerts else len(page)
            skip += len(page)
            if len(page) < LEGACY_TOP:
                return items

    def replay(self, urls: list[str]) -> int:
        """The given URLs, one after the other (the hook's own requests, without the hook)."""
        return sum(len(self.get(url)["value"]) for url in urls)


def hook_listing(resource: str, api: str, urls: list[str] | None = None) -> int:
    from airflow_provider_mtp.hooks.mtp import MTPHook

    with MTPHook("mtp_bench", api=api) as hook:
        if urls is not None:
            hook.session.hooks["response"].append(lambda reply, *_, **__: urls.append(reply.request.url))
        listing = hook.list_incidents() if resource == "incidents" else hook.list_alerts()
        return sum(1 for _ in listing)


def async_hook_listing(resource: str, api: str) -> int:
    from airflow_provider_mtp.hooks.mtp_async import MTPAsyncHook

    async def count() -> int:
        async with MTPAsyncHook(mtp_conn_id="mtp_bench", api=api) as hook:
            listing = hook.list_incidents() if resource == "incidents" else hook.list_alerts()
            return len([item async for item in listing])

    return asyncio.run(count())


def contenders(emulator: DefenderEmulator) -> list[Contender]:
    """The in-process contenders, floors first within each collection and API."""
    graph, legacy = BareClient(emulator, GRAPH), BareClient(emulator, LEGACY)
    urls: dict[str, list[str]] = {"graph": [], "legacy": []}

    def capture(api: str) -> None:
        urls[api].clear()
        hook_listing("incidents", api, urls[api])
        # msal's token calls went through the same session.
        urls[api][:] = [u for u in urls[api] if "/oauth2/" not in u and "openid-configuration" not in u]

    def hook(resource: str, api: str) -> Contender:
        return Contender(
            resource, api, "MTPHook", lambda: timed(lambda: hook_listing(resource, api)), targeted=True
        )

    def async_hook(resource: str, api: str) -> Contender:
        return Contender(
            resource,
            api,
            "MTPAsyncHook",
            lambda: timed(lambda: async_hook_listing(resource, api)),
            warm=lambda: async_hook_listing(resource, api),
            targeted=True,
        )

    def replay(api: str) -> Contender:
        client = graph if api == "graph" else legacy
        return Contender(
            "incidents",
            api,
            REPLAY,
            lambda: timed(lambda: client.replay(urls[api])),
            warm=lambda: capture(api),
            once=True,
        )

    return [
        Contender(
            "incidents",
            "graph",
            "floor: requests + nextLink",
            lambda: timed(lambda: graph.next_links("/v1.0/security/incidents")),
            warm=graph.token,
            floor=True,
        ),
        hook("incidents", "graph"),
        async_hook("incidents", "graph"),
        replay("graph"),
        Contender(
            "incidents",
            "legacy",
            "floor: requests + $skip",
            lambda: timed(legacy.skip_pages),
            warm=legacy.token,
            floor=True,
        ),
        hook("incidents", "legacy"),
        Contender(
            "alerts",
            "graph",
            "floor: requests + nextLink",
            lambda: timed(lambda: graph.next_links("/v1.0/security/alerts_v2")),
            floor=True,
        ),
        hook("alerts", "graph"),
        async_hook("alerts", "graph"),
        Contender(
            "alerts",
            "legacy",
            "floor: requests + $skip (embedded)",
            lambda: timed(lambda: legacy.skip_pages(alerts=True)),
            floor=True,
        ),
        hook("alerts", "legacy"),
    ]


class Peer:
    """A worker process in ``.bench-venv`` (bench/_peers.py) listing through one peer library.

    :param name: ``airflow-msgraph`` or ``msgraph-sdk``.
    :param venv: the peers' virtualenv.
    :param emulator: the emulator it lists from.
    """

    def __init__(self, name: str, venv: Path, emulator: DefenderEmulator) -> None:
        self.name = name
        self.error: str | None = None
        self._process: subprocess.Popen[str] | None = None
        python = venv / "bin" / "python"
        if not python.exists():
            self.error = f"no {venv} (make bench-venv creates it)"
            return
        RESULTS.mkdir(parents=True, exist_ok=True)
        # The peers log every request at INFO, as they would in a task log; kept out of the table.
        self._log: IO[str] = (RESULTS / f"paging-{name}.log").open("w")
        env = dict(
            os.environ,
            EMU_URL=emulator.url,
            EMU_TENANT=emulator.tenant_id,
            EMU_CLIENT_ID=emulator.client_id,
            EMU_SECRET=emulator.client_secret,
            EMU_CA=emulator.ca_bundle,
        )
        self._process = subprocess.Popen(
            [str(python), str(Path(__file__).resolve().parent / "_peers.py"), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )
        first = self._read()
        if "ready" not in first:
            self.error = first.get("error", "the worker exited without a word")
            self.close()

    def _read(self) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            return {"error": f"the worker exited (log: {RESULTS / f'paging-{self.name}.log'})"}
        answer: dict[str, Any] = json.loads(line)
        return answer

    def list(self, resource: str, limit: int | None = None) -> Outcome:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"list": resource, "limit": limit}) + "\n")
        self._process.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"{self.name} failed to list {resource}: {answer['error']}")
        return {key: float(answer[key]) for key in ("seconds", "cpu", "count")}

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None and process.stdin is not None:
            process.stdin.write('{"quit": true}\n')
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._log.close()


def peer_contenders(peers: list[Peer], *, sdk_items: int) -> list[Contender]:
    """Each peer on both Graph collections (the peers speak Graph only)."""
    found = []
    for peer in peers:
        limit = sdk_items if peer.name == "msgraph-sdk" else None
        label = f"{peer.name} (first {sdk_items:,})" if limit else peer.name
        for resource in ("incidents", "alerts"):
            found.append(
                Contender(
                    resource,
                    "graph",
                    label,
                    lambda peer=peer, resource=resource, limit=limit: peer.list(resource, limit),
                )
            )
    return found
