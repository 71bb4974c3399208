"""A 100,000-row hunt written to storage: the operator's path vs naive code, per format.

One emulator (quotas off) with a ``DeviceProcessEvents`` table of 100,000+ rows; the query
projects 25 columns and takes 99,999 rows (a result of exactly 100,000 rows is taken as truncated
by :class:`~airflow_provider_mtp.operators.hunting.RunHuntingQueryOperator`). Every measurement
runs in its own fresh process (this script re-run with ``--child``): imports first, then the clock
runs over the token request, the hunt and the file written, and the process reports its wall
time, CPU time and peak RSS growth (``VmHWM`` at the end minus ``VmRSS`` before the call). What a
running worker has already loaded (the provider's modules, Airflow's plugins, which the lineage
collector loads on the first write to an ``ObjectStoragePath`` file) is loaded before the clock.

What is compared, per format:

* **operator**: ``RunHuntingQueryOperator(output_path=...).execute(context)``: the part file,
  the manifest, the atomic move into place.
* **naive**: ``requests`` (token, then the hunt), ``response.json()``, then JSON Lines with
  ``json.dump(row, f)`` + ``"\\n"`` per row; CSV with ``csv.writer`` (header, then
  ``writerow(row.values())``); Parquet with ``pyarrow.Table.from_pylist`` + ``pq.write_table``.
* **msgraph** (JSON Lines only): Airflow's ``KiotaRequestAdapterHook`` (microsoft-azure provider)
  + ``json.dump``, run in ``.bench-venv`` when it exists (``make bench-venv``).

Ratios are taken within each round, medians over rounds. Targets: JSON Lines wall <= 1.0x naive
(stretch 0.7x), CSV and Parquet <= 1.2x, memory growth <= 5 % of the naive baseline's.

    .venv/bin/python bench/hunting_storage.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import Report, median

ROWS = 99_999
COLUMNS = (
    "Timestamp, DeviceId, DeviceName, ActionType, FileName, FileSize, ProcessId, ProcessCommandLine, "
    "ProcessIntegrityLevel, ProcessCreationTime, AccountDomain, AccountName, AccountUpn, LogonId, "
    "InitiatingProcessFileName, InitiatingProcessId, InitiatingProcessParentId, InitiatingProcessSessionId, "
    "CreatedProcessSessionId, IsInitiatingProcessRemoteSession, IsProcessRemoteSession, "
    "ProcessRemoteSessionIP, AdditionalFields, ReportId, ProcessUniqueId"
)
QUERY = os.environ.get("FP_QUERY") or f"DeviceProcessEvents | take {ROWS} | project {COLUMNS}"
FORMATS = ("jsonl", "csv", "parquet")
BENCH_VENV = Path(__file__).resolve().parents[1] / ".bench-venv" / "bin" / "python"
MEMORY_SHARE = 0.05
#: How a child's figures line starts (a peer's own logging may print to stdout too).
RESULT = "hunting_storage result: "


# --------------------------------------------------------------------------------------------------
# Children: one measurement each
# --------------------------------------------------------------------------------------------------


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _token(env: dict[str, str], scope: str) -> str:
    import requests

    reply = requests.post(
        f"{env['url']}/{env['tenant']}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": env["client_id"],
            "client_secret": env["client_secret"],
            "scope": scope,
        },
        verify=env["ca"],
        timeout=60,
    )
    reply.raise_for_status()
    return str(reply.json()["access_token"])


def _naive(fmt: str, out: str, env: dict[str, str]) -> Any:
    import csv

    import requests

    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

    def call() -> int:
        bearer = _token(env, "https://graph.microsoft.com/.default")
        reply = requests.post(
            f"{env['url']}/v1.0/security/runHuntingQuery",
            json={"Query": QUERY},
            headers={"Authorization": f"Bearer {bearer}"},
            verify=env["ca"],
            timeout=600,
        )
        if reply.status_code != 200:
            raise SystemExit(f"the hunt failed: {reply.status_code} {reply.text[:500]}")
        data = reply.json()
        rows = data["results"]
        if fmt == "jsonl":
            with open(out, "w", encoding="utf-8") as stream:
                for row in rows:
                    json.dump(row, stream)
                    stream.write("\n")
        elif fmt == "csv":
            with open(out, "w", encoding="utf-8", newline="") as stream:
                writer = csv.writer(stream)
                writer.writerow([column["name"] for column in data["schema"]])
                for row in rows:
                    writer.writerow(row.values())
        else:
            pq.write_table(pa.Table.from_pylist(rows), out)
        return len(rows)

    return call


def _operator(fmt: str, out: str, env: dict[str, str]) -> Any:
    from types import SimpleNamespace

    from airflow.sdk.lineage import get_hook_lineage_collector

    # What the hook imports when it first runs: here Python compiles each module from source
    # (PYTHONDONTWRITEBYTECODE), which a worker with its .pyc files does not pay per task.
    import airflow_provider_mtp.api.client
    import airflow_provider_mtp.api.graph
    import airflow_provider_mtp.api.legacy
    import airflow_provider_mtp.api.session
    import airflow_provider_mtp.api.transport
    import airflow_provider_mtp.auth
    import airflow_provider_mtp.hooks.mtp
    import airflow_provider_mtp.outputs
    import airflow_provider_mtp.settings  # noqa: F401
    from airflow_provider_mtp.operators.hunting import RunHuntingQueryOperator

    if fmt == "parquet":
        import pyarrow.compute
        import pyarrow.parquet  # noqa: F401

    # A running worker has loaded Airflow's plugins; here the first write to an ObjectStoragePath
    # file would (through the lineage collector), costing 0.5 s that no hunt pays in production.
    get_hook_lineage_collector()

    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(
        dag_id="bench",
        task_id="hunt",
        run_id="bench_run",
        map_index=-1,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
    )

    def call() -> int:
        operator = RunHuntingQueryOperator(
            task_id="hunt", query=QUERY, mtp_conn_id="mtp_bench", output_path=out
        )
        manifest = operator.execute({"ti": ti})  # type: ignore[arg-type]
        return int(manifest["rows"])

    return call


def _msgraph(fmt: str, out: str, env: dict[str, str]) -> Any:
    import asyncio

    from airflow.providers.microsoft.azure.hooks.msgraph import KiotaRequestAdapterHook

    async def hunt() -> Any:
        hook = KiotaRequestAdapterHook(conn_id="msgraph_bench", timeout=600)
        return await hook.run(
            url="security/runHuntingQuery", method="POST", data={"Query": QUERY}, response_type=None
        )

    def call() -> int:
        data = asyncio.run(hunt())
        rows = data["results"]
        with open(out, "w", encoding="utf-8") as stream:
            for row in rows:
                json.dump(row, stream)
                stream.write("\n")
        return len(rows)

    return call


def child(kind: str, fmt: str, out: str) -> None:
    env = json.loads(os.environ["MTP_BENCH_EMULATOR"])
    call = {"naive": _naive, "operator": _operator, "msgraph": _msgraph}[kind](fmt, out, env)
    before = _status("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    rows = call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    growth = _status("VmHWM") - before
    figures = {"wall": wall, "cpu": cpu, "growth": growth, "rows": rows, "bytes": os.path.getsize(out)}
    print(RESULT + json.dumps(figures), flush=True)


# --------------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------------


def measure(
    kind: str, fmt: str, folder: Path, env: dict[str, str], python: str = sys.executable
) -> dict[str, Any]:
    out = folder / f"{kind}.{fmt}"
    done = subprocess.run(
        ["nice", "-n", "10", python, __file__, "--child", kind, fmt, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} {fmt} failed:\n{done.stderr[-3000:]}")
    (line,) = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    result: dict[str, Any] = json.loads(line[len(RESULT) :])
    if result["rows"] != ROWS:
        raise SystemExit(f"{kind} {fmt} wrote {result['rows']} rows, not {ROWS}")
    out.unlink()
    return result


def _msgraph_env(emulator: Any, env: dict[str, str]) -> dict[str, str]:
    """An ``msgraph`` connection as a DAG author points it at the emulator (as bench/_peers.py)."""
    scheme, host = emulator.url.split("://", 1)
    conn = {
        "conn_type": "msgraph",
        "host": host,
        "schema": scheme,
        "login": emulator.client_id,
        "password": emulator.client_secret,
        "extra": {
            "tenant_id": emulator.tenant_id,
            "api_version": "v1.0",
            "authority": emulator.url,
            "verify": emulator.ca_bundle,
            "scopes": "https://graph.microsoft.com/.default",
            "disable_instance_discovery": True,
            # It defaults to the authority, which kiota refuses with its scheme in front.
            "allowed_hosts": host.split(":")[0],
        },
    }
    return {
        **env,
        "AIRFLOW_CONN_MSGRAPH_BENCH": json.dumps(conn),
        "REQUESTS_CA_BUNDLE": emulator.ca_bundle,
        "SSL_CERT_FILE": emulator.ca_bundle,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated (default: all)")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "FORMAT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    formats = [name for name in args.formats.split(",") if name]
    from airflow_provider_mtp.emulator import DefenderEmulator

    report = Report(
        "hunting_storage",
        f"{ROWS:,} rows x 25 columns to a file: the operator's path vs naive code (medians of {args.rounds} rounds)",
        ["format", "path", "wall s", "CPU s", "RSS growth MB", "file MB", "wall / naive", "CPU / naive"],
    )
    with (
        DefenderEmulator(
            incidents=5, days=1, events_per_day=ROWS + 1, quotas=False, max_result_bytes=1 << 30
        ) as emulator,
        tempfile.TemporaryDirectory(prefix="mtp-bench-storage-") as folder,
    ):
        described = {
            "url": emulator.url,
            "tenant": emulator.tenant_id,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "ca": emulator.ca_bundle,
        }
        env = {
            **os.environ,
            "AIRFLOW_CONN_MTP_BENCH": emulator.airflow_conn,
            "MTP_BENCH_EMULATOR": json.dumps(described),
        }
        peers = ["naive", "operator"]
        if BENCH_VENV.exists():
            peers.append("msgraph")
        else:
            report.note(
                f"Airflow's msgraph hook + json.dump not measured: {BENCH_VENV} is missing (make bench-venv)"
            )
        for fmt in formats:
            runs: dict[str, list[dict[str, Any]]] = {}
            for _ in range(args.rounds):
                for kind in peers:
                    if kind == "msgraph" and fmt != "jsonl":
                        continue
                    if kind == "msgraph":
                        result = measure(
                            kind, fmt, Path(folder), _msgraph_env(emulator, env), str(BENCH_VENV)
                        )
                    else:
                        result = measure(kind, fmt, Path(folder), env)
                    runs.setdefault(kind, []).append(result)
            naive = runs["naive"]
            for kind, results in runs.items():
                wall = [r["wall"] / n["wall"] for r, n in zip(results, naive, strict=True)]
                cpu = [r["cpu"] / n["cpu"] for r, n in zip(results, naive, strict=True)]
                report.row(
                    fmt,
                    kind,
                    median(r["wall"] for r in results),
                    median(r["cpu"] for r in results),
                    median(r["growth"] for r in results),
                    median(r["bytes"] for r in results) / 1e6,
                    median(wall),
                    median(cpu),
                )
            ours = runs["operator"]
            wall_ratio = median(r["wall"] / n["wall"] for r, n in zip(ours, naive, strict=True))
            limit = 1.0 if fmt == "jsonl" else 1.2
            report.target(f"{fmt} wall / naive", wall_ratio, limit)
            if fmt == "jsonl":
                report.target(f"{fmt} wall / naive (stretch)", wall_ratio, 0.7)
            share = median(r["growth"] for r in ours) / max(median(n["growth"] for n in naive), 1e-9)
            report.target(f"{fmt} memory growth / naive's", share * 100, MEMORY_SHARE * 100, unit=" %")
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
