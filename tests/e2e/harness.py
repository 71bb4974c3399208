"""A real Airflow on loopback for the end-to-end tests: emulator, api-server, scheduler, triggerer, dag-processor.

:func:`airflow_stack` starts the Defender emulator and four separate Airflow processes (not
``airflow standalone``: separate processes give each one its own log file, so a test can read what
the triggerer itself printed) in a throw-away ``AIRFLOW_HOME`` with SQLite and the LocalExecutor,
the repository's ``example_dags/`` as the dags folder, and a webhook sink in this process. Every
process runs in its own process group and is stopped by its pid (SIGTERM to the group, SIGKILL
after :data:`STOP_GRACE_S`) however the tests end.

Logs land in ``tests/artifacts/e2e/`` (gitignored): ``<process>.log`` per process, the task logs
under ``task-logs/``, the DAGs' outputs under ``outputs/``. Waits are bounded; a failed wait names
what it waited for and shows the tail of the process logs that explain it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import requests

from airflow_provider_mtp.emulator import DefenderEmulator

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "example_dags"
ARTIFACTS = REPO / "tests" / "artifacts"
E2E_ARTIFACTS = ARTIFACTS / "e2e"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))

#: The SimpleAuthManager user the tests (and the browser) log in as.
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-e2e"
#: The pool the example DAGs' hunts share (the tenant's hunting quota) and its size here.
HUNTING_POOLS = {"mtp_hunting": 3}
#: Seconds between the incident event trigger's polls (the example's default is 60).
INCIDENT_POLL_S = 5
#: Where the webhook sink listens, as the triage DAG's ``mtp_webhook`` connection names it.
WEBHOOK_PATH = "/hooks/mtp-triage"
#: The example DAGs the stack must have parsed before a test may start.
EXAMPLE_DAG_IDS = (
    "mtp_scheduled_enrichment",
    "mtp_incident_triage",
    "mtp_adhoc_hunt",
    "mtp_incident_events",
    "mtp_alert_enrichment",
)

#: The tenant behind ``mtp_default``: a week of history, a few incidents an hour near its "now".
EMULATOR_OPTIONS: dict[str, Any] = {"seed": 7, "incidents": 20, "days": 7}
#: Separate processes; the api-server also serves the Task Execution API to the workers.
PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Seconds for the api-server to answer and the other three to heartbeat (about 15 s on 2 cores).
START_TIMEOUT_S = 120.0
#: Seconds for the dag-processor to parse the example DAGs the first time.
PARSE_TIMEOUT_S = 120.0
STOP_GRACE_S = 15.0
#: Lines of each process log quoted in a failure message.
TAIL_LINES = 40
#: How long a review waits before it is answered even without the scheduler's line for its parked
#: task (a restarted scheduler never gets the executor's event of a worker that exited before it).
REVIEW_SETTLE_S = 20.0

T = TypeVar("T")


class StackError(AssertionError):
    """A bounded wait ran out or a process died; the message carries the relevant log tails."""


def load_example(dag_id: str) -> Any:
    """The example DAG file ``example_dags/<dag_id>.py`` as a module (its constants and ``dag``)."""
    spec = importlib.util.spec_from_file_location(f"e2e_{dag_id}", DAGS_FOLDER / f"{dag_id}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a log file, or a note that it is missing."""
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text)


def wait_for(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    explain: Callable[[], str] = lambda: "",
    interval: float = 1.0,
) -> T:
    """Call ``check`` until it returns something other than ``None``/``False``; fail after ``timeout`` s.

    :param check: returns the awaited value, or ``None``/``False`` to keep waiting; may raise
        :class:`StackError` to stop at once (a process died).
    :param what: the awaited thing, for the failure message.
    :param explain: more text for the failure message (log tails, the last state seen).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what}\n{explain()}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------------
# The webhook sink: where the triage DAG's HttpOperator posts its summary
# --------------------------------------------------------------------------------------------------


@dataclass
class WebhookSink:
    """A tiny HTTP server in this process that records every request it gets and answers 200."""

    received: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def start(self) -> WebhookSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode(errors="replace") if length else ""
                sink.received.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                reply = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_POST = do_PUT = do_GET = _record  # http.server's naming

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest's output clean; the requests are recorded above

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, name="webhook-sink", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def json_bodies(self) -> list[Any]:
        """The bodies that parse as JSON, in arrival order."""
        bodies = []
        for request in list(self.received):
            try:
                bodies.append(json.loads(request["body"]))
            except ValueError:
                continue
        return bodies


# --------------------------------------------------------------------------------------------------
# The stack
# --------------------------------------------------------------------------------------------------


@dataclass
class AirflowStack:
    """A running stack: its URLs, environment, processes, and helpers for the REST API."""

    home: Path
    port: int
    env: dict[str, str]
    emulator: DefenderEmulator
    webhook: WebhookSink
    output_root: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: The login the REST helpers use (tests/stack/ logs in as the compose file's admin).
    admin: tuple[str, str] = (ADMIN_USER, ADMIN_PASSWORD)
    _token: str | None = None
    _graph_token: str | None = None
    _session: requests.Session = field(default_factory=requests.Session)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def log_path(name: str) -> Path:
        return E2E_ARTIFACTS / f"{name}.log"

    def logs(self, *names: str, lines: int = TAIL_LINES) -> str:
        """Log tails for a failure message: the named processes, or all of them."""
        chosen = names or PROCESSES
        return "\n".join(
            f"--- last lines of {name}.log ---\n{tail(self.log_path(name), lines)}" for name in chosen
        )

    def check_alive(self) -> None:
        """Raise :class:`StackError` with the log of any Airflow process that exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackError(
                    f"airflow {name} exited with code {process.returncode}\n{self.logs(name, lines=80)}"
                )

    # REST API --------------------------------------------------------------------------------------

    def token(self) -> str:
        """A JWT for the admin user, from ``POST /auth/token`` as the UI's login form gets it."""
        if self._token is None:
            reply = self._session.post(
                f"{self.base_url}/auth/token",
                json={"username": self.admin[0], "password": self.admin[1]},
                timeout=30,
            )
            if reply.status_code != 201:
                raise StackError(
                    f"POST /auth/token: {reply.status_code} {reply.text}\n{self.logs('api-server')}"
                )
            self._token = str(reply.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, *, expect: Sequence[int] = (200,), **kwargs: Any) -> Any:
        """Call the api-server with the admin's token; the JSON reply. Fails on an unexpected status."""
        reply = self._session.request(
            method,
            f"{self.base_url}{path}",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=60,
            **kwargs,
        )
        if reply.status_code not in expect:
            raise StackError(f"{method} {path}: {reply.status_code} {reply.text[:2000]}")
        return reply.json() if reply.content else None

    def unpause(self, dag_id: str) -> None:
        """``PATCH /api/v2/dags/{id}`` as the UI's toggle does (DAGs start paused)."""
        reply = self.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        assert reply["is_paused"] is False, reply

    def trigger(
        self,
        dag_id: str,
        *,
        logical_date: datetime | None,
        data_interval: tuple[datetime, datetime] | None = None,
        conf: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """``POST /api/v2/dags/{id}/dagRuns``, as the UI's trigger form does; the new run."""
        body: dict[str, Any] = {
            "logical_date": logical_date.isoformat() if logical_date else None,
            "conf": conf or {},
        }
        if data_interval is not None:
            body["data_interval_start"], body["data_interval_end"] = (
                when.isoformat() for when in data_interval
            )
        if run_id is not None:
            body["dag_run_id"] = run_id
        run: dict[str, Any] = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        return run

    def last_data_hour(self) -> tuple[datetime, datetime]:
        """The hour before the emulator's data clock: the last full hour of the tenant's history.

        It is also the interval the scheduler runs next for an hourly DAG, unless the wall clock
        passed an hour since the emulator started; the tests use it either way, so the data they
        ask for exists.
        """
        end = _instant(str(self.emulator.info["now"])).replace(minute=0, second=0, microsecond=0)
        return end - timedelta(hours=1), end

    def trigger_interval(self, dag_id: str, interval: tuple[datetime, datetime]) -> dict[str, Any]:
        """Trigger a run for a data interval, its logical date the interval's start (a cron timetable's).

        Call it while the DAG is still paused: when the scheduler's next run is the same interval,
        it then finds our run for that logical date on unpausing and does not create a second one
        (with ``max_active_runs=1`` ours would otherwise wait behind it).
        """
        return self.trigger(dag_id, logical_date=interval[0], data_interval=interval)

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return result

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.api(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": 50}
        )["dag_runs"]
        return runs

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        tis: list[dict[str, Any]] = self.api(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
        )["task_instances"]
        return tis

    def xcom(self, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1) -> Any:
        """A task's return value, deserialised."""
        entry = self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
            params={"map_index": map_index, "deserialize": True, "stringify": False},
        )
        return entry["value"]

    # Human-in-the-loop reviews, through the REST endpoints the UI's Required Actions use ----------

    def waiting_reviews(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's HITL requests nobody has answered yet (``GET .../hitlDetails``)."""
        found: list[dict[str, Any]] = self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/hitlDetails",
            params={"response_received": "false", "limit": 100},
        )["hitl_details"]
        return found

    def review_settled(self, review: dict[str, Any]) -> bool:
        """Whether the scheduler has handled the exit of the worker that parked this review's task.

        Airflow 3.3 resumes a task parked in ``awaiting_input`` as soon as it is answered. If the
        answer comes before the scheduler has processed the executor's "success" for the parking
        process, the scheduler sees that event for a task that is queued again and fails the task
        ("finished with state success, but the task instance's state attribute is queued"). A
        person never answers that fast; the tests wait for the scheduler's ``TaskInstance Finished``
        line for this try (state ``awaiting_input``), or :data:`REVIEW_SETTLE_S` after the request.
        """
        ti = review["task_instance"]
        finished = re.compile(
            rf"TaskInstance Finished: .*ti_id={re.escape(str(ti['id']))},.*state=awaiting_input,"
            rf".*try_number={int(ti['try_number'])},"
        )
        path = self.log_path("scheduler")
        if path.exists() and finished.search(path.read_text(errors="replace")):
            return True
        waited = datetime.now(UTC) - _instant(str(review["created_at"]))
        return waited > timedelta(seconds=REVIEW_SETTLE_S)

    def answer_review(self, review: dict[str, Any], option: str) -> dict[str, Any]:
        """Answer one HITL request as the UI's form does (``PATCH .../hitlDetails``)."""
        ti = review["task_instance"]
        reply: dict[str, Any] = self.api(
            "PATCH",
            f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/"
            f"{ti['map_index']}/hitlDetails",
            json={"chosen_options": [option], "params_input": {}},
        )
        return reply

    def wait_run_answering(
        self, dag_id: str, run_id: str, option: str, *, timeout: float
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Wait for the run to succeed, answering every review it asks with ``option`` meanwhile.

        :return: the run, and the reviews answered (as listed before the answer).
        """
        answered: list[dict[str, Any]] = []
        last: dict[str, Any] = {}

        def finished() -> dict[str, Any] | None:
            self.check_alive()
            for review in self.waiting_reviews(dag_id, run_id):
                if review["task_instance"]["state"] == "awaiting_input" and self.review_settled(review):
                    self.answer_review(review, option)
                    answered.append(review)
            last.update(self.run(dag_id, run_id))
            if last["state"] == "failed":
                raise StackError(f"{dag_id} run {run_id} failed:\n{self.describe_run(dag_id, run_id)}")
            return dict(last) if last["state"] == "success" else None

        run = wait_for(
            finished,
            timeout=timeout,
            what=f"{dag_id} run {run_id} to succeed, its reviews answered {option!r}",
            explain=lambda: f"last state: {last.get('state')}\n{self.describe_run(dag_id, run_id)}",
        )
        return run, answered

    # The emulator's Graph API (what a Defender tenant shows) ---------------------------------------

    def graph(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the emulator's Graph API as the connection's application; the JSON reply."""
        if self._graph_token is None:
            reply = self.emulator.session.post(
                f"{self.emulator.url}/{self.emulator.tenant_id}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.emulator.client_id,
                    "client_secret": self.emulator.client_secret,
                    "scope": "https://graph.microsoft.com/.default",
                },
                timeout=30,
                verify=self.emulator.ca_bundle,
            )
            reply.raise_for_status()
            self._graph_token = str(reply.json()["access_token"])
        reply = self.emulator.session.request(
            method,
            f"{self.emulator.url}/v1.0/security/{path}",
            headers={"Authorization": f"Bearer {self._graph_token}"},
            timeout=60,
            verify=self.emulator.ca_bundle,
            **kwargs,
        )
        if not reply.ok:
            raise StackError(f"emulator {method} {path}: {reply.status_code} {reply.text[:1000]}")
        return reply.json()

    def incidents(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every incident ``GET /security/incidents`` lists with these parameters (all pages)."""
        page = self.graph("GET", "incidents", params=params)
        found: list[dict[str, Any]] = list(page["value"])
        while next_link := page.get("@odata.nextLink"):
            page = self.graph("GET", next_link.split("/v1.0/security/", 1)[1])
            found += page["value"]
        return found

    def describe_run(self, dag_id: str, run_id: str) -> str:
        """The run's task states and the tail of each unsuccessful task's log, for failure messages."""
        lines = []
        try:
            for ti in self.task_instances(dag_id, run_id):
                label = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
                lines.append(f"  {label}: {ti['state']} (try {ti['try_number']})")
                if ti["state"] not in ("success", "skipped", None):
                    lines.append(_indent(self.task_log_tail(dag_id, run_id, ti["task_id"], ti["map_index"])))
        except (StackError, requests.RequestException) as exc:
            lines.append(f"  (task instances unavailable: {exc})")
        return "\n".join(lines)

    @staticmethod
    def task_log_folder(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Path:
        """Where a task instance's logs are (the default ``log_filename_template``)."""
        folder = E2E_ARTIFACTS / "task-logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return folder / f"map_index={map_index}" if map_index >= 0 else folder

    def task_log_tail(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        """The last lines of a task's log files (every try, and its trigger's)."""
        folder = self.task_log_folder(dag_id, run_id, task_id, map_index)
        files = sorted(folder.glob("*.log")) if folder.exists() else []
        if not files:
            return f"(no task log under {folder})"
        return "\n".join(f"{path.name}:\n{tail(path, 25)}" for path in files)

    def wait_run(self, dag_id: str, run_id: str, *, timeout: float, state: str = "success") -> dict[str, Any]:
        """Wait until the run reaches ``state``; fail early if it ends in another one."""
        last: dict[str, Any] = {}

        def finished() -> dict[str, Any] | None:
            self.check_alive()
            last.update(self.run(dag_id, run_id))
            if last["state"] == state:
                return dict(last)
            if last["state"] in ("success", "failed"):
                raise StackError(
                    f"{dag_id} run {run_id} ended {last['state']}, expected {state}:\n"
                    f"{self.describe_run(dag_id, run_id)}\n{self.logs('scheduler', lines=20)}"
                )
            return None

        return wait_for(
            finished,
            timeout=timeout,
            what=f"{dag_id} run {run_id} to be {state}",
            explain=lambda: (
                f"last state: {last.get('state')}\n{self.describe_run(dag_id, run_id)}\n"
                f"{self.logs('scheduler', 'triggerer')}"
            ),
        )

    def wait_for_dags(self, dag_ids: Sequence[str], *, timeout: float = PARSE_TIMEOUT_S) -> None:
        """Wait until every DAG is parsed; fail at once, with the traceback, on an import error."""

        def parsed() -> bool:
            self.check_alive()
            errors = self.api("GET", "/api/v2/importErrors")["import_errors"]
            if errors:
                raise StackError(
                    "the example DAGs failed to import:\n"
                    + "\n".join(f"{error['filename']}:\n{error['stack_trace']}" for error in errors)
                )
            known = {dag["dag_id"] for dag in self.api("GET", "/api/v2/dags", params={"limit": 100})["dags"]}
            return set(dag_ids) <= known

        wait_for(
            parsed,
            timeout=timeout,
            what=f"the dag-processor to parse {', '.join(dag_ids)} from {self.env['AIRFLOW__CORE__DAGS_FOLDER']}",
            explain=lambda: self.logs("dag-processor"),
            interval=2.0,
        )


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _indent(text: str) -> str:
    return "\n".join(f"      {line}" for line in text.splitlines())


def airflow_env(
    home: Path,
    port: int,
    *,
    dags_folder: Path,
    emulator: DefenderEmulator,
    webhook: WebhookSink,
    output_root: Path,
) -> dict[str, str]:
    """The Airflow processes' environment: the parent's minus its Airflow settings, plus the stack's."""
    # pytest's own Airflow settings (unit-test mode, the tests/dags folder) must not leak in; and
    # REQUESTS_CA_BUNDLE would replace the emulator's CA in the workers (airflow-provider.md s. 11).
    dropped = ("AIRFLOW", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    from cryptography.fernet import Fernet

    base_url = f"http://127.0.0.1:{port}"
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        # The default (32) forks 32 worker processes on a 2-core machine.
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{ADMIN_USER}:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        # One secret for every process: the scheduler signs the workers' execution-API tokens
        # that the api-server checks; each process would otherwise make up its own.
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=base_url,
        AIRFLOW__API__WORKERS="1",
        # Workers default to http://localhost:8080/execution/ (connection refused on another port).
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{base_url}/execution/",
        # Log servers bind all interfaces on 8793/8794 by default: parallel stacks would collide.
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(E2E_ARTIFACTS / "task-logs"),
        # An AssetWatcher's trigger is registered only when its DAG is parsed unpaused: re-parse
        # soon after a test unpauses it (the default is 30 s).
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="10",
        AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="False",
        # What the example DAGs need (their docstrings): the Defender connection, the webhook
        # connection for the triage summary (its host is the full URL), where outputs go, and a
        # short poll for the AssetWatcher's trigger (read where the DAG is parsed).
        AIRFLOW_CONN_MTP_DEFAULT=emulator.airflow_conn,
        AIRFLOW_CONN_MTP_WEBHOOK=json.dumps({"conn_type": "http", "host": webhook.url}),
        MTP_OUTPUT_ROOT=output_root.as_uri(),
        MTP_INCIDENT_POLL_SECONDS=str(INCIDENT_POLL_S),
        PYTHONUNBUFFERED="1",
    )
    return env


def _start(name: str, args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    with AirflowStack.log_path(name).open("wb") as log_file:
        return subprocess.Popen(
            [AIRFLOW, *args],
            env=env,
            cwd=str(E2E_ARTIFACTS),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: its workers and children stop with it
        )


def stop_processes(processes: dict[str, subprocess.Popen[bytes]]) -> list[str]:
    """SIGTERM every process group at once, then SIGKILL any group still there after the grace time.

    By pid only: each process leads the group it was started in, so the group holds exactly what
    that process forked (LocalExecutor workers, api-server workers, parsing processes). Returns a
    line per process saying how it ended.
    """
    began = time.monotonic()
    for process in processes.values():
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
    deadline = began + STOP_GRACE_S
    for process in processes.values():
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    report = []
    for name, process in processes.items():
        # Also when the leader exited: an idle LocalExecutor worker may ignore SIGTERM and linger.
        lingering = _group_alive(process.pid)
        if lingering:
            _signal_group(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.wait(timeout=STOP_GRACE_S)
        how = "SIGKILL to its group after SIGTERM" if lingering else "SIGTERM"
        report.append(f"{name} (pid {process.pid}): exit code {process.returncode}, stopped by {how}")
    report.append(f"all stopped in {time.monotonic() - began:.1f} s")
    return report


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a zombie member still counts as there
        return True
    return True


def _signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(pgid, signum)


def _migrate(env: dict[str, str]) -> None:
    log_path = AirflowStack.log_path("db-migrate")
    with log_path.open("wb") as log_file:
        done = subprocess.run(
            [AIRFLOW, "db", "migrate"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            timeout=180,
            check=False,
        )
    if done.returncode != 0:
        raise StackError(f"airflow db migrate failed ({done.returncode}):\n{tail(log_path, 60)}")


def _wait_healthy(stack: AirflowStack) -> None:
    """The api-server answers and the scheduler, triggerer and dag-processor heartbeat."""
    last: dict[str, Any] = {}

    def healthy() -> bool:
        stack.check_alive()
        try:
            reply = requests.get(f"{stack.base_url}/api/v2/monitor/health", timeout=5)
        except requests.RequestException:
            return False
        if not reply.ok:
            return False
        last.update(reply.json())
        return all(
            (last.get(part) or {}).get("status") == "healthy"
            for part in ("scheduler", "triggerer", "dag_processor")
        )

    wait_for(
        healthy,
        timeout=START_TIMEOUT_S,
        what="the api-server to answer and the scheduler, triggerer and dag-processor to heartbeat",
        explain=lambda: f"last health: {last}\n{stack.logs()}",
    )


@contextmanager
def airflow_stack(
    tmp_home: Path, *, dags_folder: Path = DAGS_FOLDER, dag_ids: Sequence[str] = EXAMPLE_DAG_IDS
) -> Iterator[AirflowStack]:
    """The whole stack, ready: processes healthy, pools made, the DAGs parsed.

    :param tmp_home: an empty folder for ``AIRFLOW_HOME`` (SQLite database, config, passwords).
    :param dags_folder: the dags folder (the repository's example DAGs).
    :param dag_ids: DAGs that must be parsed, without import errors, before the stack is ready.
    """
    shutil.rmtree(E2E_ARTIFACTS, ignore_errors=True)
    E2E_ARTIFACTS.mkdir(parents=True)
    output_root = E2E_ARTIFACTS / "outputs"
    output_root.mkdir()
    webhook = WebhookSink().start()
    # The data clock stays at the start of this hour (the default), so the last full hour is in
    # the tenant's history. A small tenant: the default 500 incidents put about 30 open
    # medium/high ones in the last hour, dozens of hunts for one triage run.
    emulator = DefenderEmulator(**EMULATOR_OPTIONS)
    stack: AirflowStack | None = None
    try:
        emulator.start()
        port = free_port()
        env = airflow_env(
            tmp_home,
            port,
            dags_folder=dags_folder,
            emulator=emulator,
            webhook=webhook,
            output_root=output_root,
        )
        stack = AirflowStack(
            home=tmp_home, port=port, env=env, emulator=emulator, webhook=webhook, output_root=output_root
        )
        _migrate(env)
        for name in PROCESSES:
            stack.processes[name] = _start(name, [name], env)
        _wait_healthy(stack)
        for pool, slots in HUNTING_POOLS.items():
            stack.api(
                "POST",
                "/api/v2/pools",
                expect=(201,),
                json={"name": pool, "slots": slots, "description": "Defender hunting quota (e2e)"},
            )
        stack.wait_for_dags(dag_ids)
        yield stack
    finally:
        if stack is not None:
            report = stop_processes(stack.processes)
            (E2E_ARTIFACTS / "stopped.log").write_text("\n".join(report) + "\n")
        emulator.stop()
        webhook.stop()
        if emulator.log_path is not None and emulator.log_path.exists():
            shutil.copy(emulator.log_path, E2E_ARTIFACTS / "emulator.log")
