"""The peers' side of bench/paging.py: a worker that runs in ``.bench-venv`` (``make bench-venv``).

The peers (Airflow's msgraph hook ``KiotaRequestAdapterHook`` and ``msgraph-sdk``) must not go into
the project's own virtualenv, so bench/paging.py starts this script with ``.bench-venv/bin/python``
once per peer and drives it over stdin/stdout, one JSON line each way, so that every round times
the peers between the in-process contenders (ratios within a round):

    {"list": "incidents", "limit": null}  ->  {"seconds": 1.23, "cpu": 0.9, "count": 10000, "requests": 200}
    {"quit": true}

The emulator comes from the environment (``EMU_URL``, ``EMU_TENANT``, ``EMU_CLIENT_ID``,
``EMU_SECRET``, ``EMU_CA``). The first line on stdout is ``{"ready": ...}`` after a warm-up call
(token acquired, connection open), or ``{"error": "..."}`` saying why the peer could not be
pointed at the emulator.

    .bench-venv/bin/python bench/_peers.py airflow-msgraph|msgraph-sdk
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
PATHS = {"incidents": "security/incidents", "alerts": "security/alerts_v2"}

#: Lists a collection (``incidents`` or ``alerts``), stopping after ``limit`` items if given: (items, requests).
Lister = Callable[[str, int | None], Awaitable[tuple[int, int]]]


def emulator() -> dict[str, str]:
    """The emulator this worker talks to, from the environment bench/paging.py sets."""
    return {key: os.environ[f"EMU_{key.upper()}"] for key in ("url", "tenant", "client_id", "secret", "ca")}


async def airflow_msgraph(emu: dict[str, str]) -> Lister:
    """Airflow's ``KiotaRequestAdapterHook``, as a DAG author configures it: an ``msgraph``
    connection whose host is the emulator, its ``authority`` the emulator's Entra ID and ``verify``
    the emulator's CA bundle; pages through ``paginated_run`` (its ``@odata.nextLink`` loop)."""
    from airflow.providers.microsoft.azure.hooks.msgraph import KiotaRequestAdapterHook

    scheme, host = emu["url"].split("://", 1)
    os.environ["AIRFLOW_CONN_MSGRAPH_BENCH"] = json.dumps(
        {
            "conn_type": "msgraph",
            "host": host,
            "schema": scheme,
            "login": emu["client_id"],
            "password": emu["secret"],
            "extra": {
                "tenant_id": emu["tenant"],
                "api_version": "v1.0",
                "authority": emu["url"],
                "verify": emu["ca"],
                "scopes": GRAPH_SCOPE,
                "disable_instance_discovery": True,
                # It defaults to the authority, which kiota refuses with its scheme in front.
                "allowed_hosts": host.split(":")[0],
            },
        }
    )
    hook = KiotaRequestAdapterHook(conn_id="msgraph_bench", timeout=60)

    async def listing(resource: str, limit: int | None) -> tuple[int, int]:
        # paginated_run reads every page before it returns: no early stop.
        pages = await hook.paginated_run(url=PATHS[resource])
        return sum(len(page["value"]) for page in pages), len(pages)

    await hook.run(url=PATHS["incidents"], query_parameters={"$top": 1})
    return listing


async def msgraph_sdk(emu: dict[str, str]) -> Lister:
    """``msgraph-sdk``'s ``GraphServiceClient`` over an httpx client whose base URL is the emulator
    and which trusts its CA; azure-identity's async ``ClientSecretCredential`` with the emulator
    as its authority; pages by following ``odata_next_link`` with ``with_url``, as its docs show."""
    import httpx
    from azure.identity.aio import ClientSecretCredential
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core import GraphClientFactory

    credential = ClientSecretCredential(
        emu["tenant"],
        emu["client_id"],
        emu["secret"],
        authority=emu["url"],
        connection_verify=emu["ca"],
        disable_instance_discovery=True,
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[GRAPH_SCOPE], allowed_hosts=[emu["url"].split("://", 1)[1].split(":")[0]]
    )
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(
            base_url=f"{emu['url']}/v1.0", verify=ssl.create_default_context(cafile=emu["ca"]), timeout=60
        )
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{emu['url']}/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    builders = {"incidents": client.security.incidents, "alerts": client.security.alerts_v2}

    async def listing(resource: str, limit: int | None) -> tuple[int, int]:
        builder: Any = builders[resource]
        page = await builder.get()
        count, requests = len(page.value or []), 1
        while page.odata_next_link and (limit is None or count < limit):
            page = await builder.with_url(page.odata_next_link).get()
            count, requests = count + len(page.value or []), requests + 1
        return count, requests

    await client.security.incidents.with_url(f"{emu['url']}/v1.0/security/incidents?$top=1").get()
    return listing


PEERS: dict[str, Callable[[dict[str, str]], Awaitable[Lister]]] = {
    "airflow-msgraph": airflow_msgraph,
    "msgraph-sdk": msgraph_sdk,
}


#: Where the protocol's lines go: the real stdout, while the peers' own prints go to stderr.
_protocol: TextIO = sys.stdout


def say(message: dict[str, Any]) -> None:
    _protocol.write(json.dumps(message) + "\n")
    _protocol.flush()


async def serve(peer: str) -> None:
    try:
        listing = await PEERS[peer](emulator())
    except Exception as exc:
        say({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=6)})
        return
    say({"ready": peer})
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        order = json.loads(line)
        if order.get("quit"):
            return
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            count, requests = await listing(order["list"], order.get("limit"))
        except Exception as exc:
            say({"error": f"{type(exc).__name__}: {exc}"})
            continue
        say(
            {
                "seconds": time.perf_counter() - wall,
                "cpu": time.process_time() - cpu,
                "count": count,
                "requests": requests,
            }
        )


if __name__ == "__main__":
    _protocol, sys.stdout = sys.stdout, sys.stderr
    asyncio.run(serve(sys.argv[1]))
