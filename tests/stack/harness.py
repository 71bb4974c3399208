"""The compose file's stack as local processes: Postgres, Redis, the emulator, Airflow on Celery, 2 workers.

:func:`compose_stack` reads ``docker-compose.yaml`` (:mod:`tests.stack.compose` says how each
service becomes a local process), starts every service in ``depends_on`` order (waiting for each
``service_healthy`` dependency with the service's own healthcheck, and for ``airflow-init`` to exit
0), creates the hunting pool, waits for the example DAGs to be parsed, and yields a
:class:`ComposeStack`. Everything is stopped however the block ends.

Each process runs in its own process group and logs to ``tests/artifacts/stack/<instance>.log``;
:meth:`ComposeStack.stop`, :meth:`~ComposeStack.kill` and :meth:`~ComposeStack.restart` act on one
instance (``airflow-worker-1``, ``postgres``...). The REST helpers (``trigger``, ``wait_run``,
``xcom``, ``task_instances``...) and the emulator handle (``stack.emulator.stats()``,
``put_incidents``, ``advance_clock``...) are those of :class:`tests.e2e.harness.AirflowStack`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_mtp.emulator import DefenderEmulator
from tests.e2e.harness import (
    ARTIFACTS,
    EXAMPLE_DAG_IDS,
    HUNTING_POOLS,
    TAIL_LINES,
    AirflowStack,
    StackError,
    WebhookSink,
    _group_alive,
    stop_processes,
    tail,
    wait_for,
)
from tests.stack.compose import (
    COMPOSE_FILE,
    ComposeError,
    Instance,
    Layout,
    baked_passwords,
    choose_ports,
    load_compose,
    plan,
)

STACK_ARTIFACTS = ARTIFACTS / "stack"
VENV_BIN = Path(sys.executable).parent
#: Seconds for one service to become healthy (an Airflow process takes ~15 s to start on 2 cores).
HEALTH_TIMEOUT_S = 180.0
#: Seconds ``airflow-init`` (``db migrate`` on Postgres) may take.
INIT_TIMEOUT_S = 300.0
#: Seconds a healthcheck command may run (the Airflow CLI ones import Airflow: several seconds).
HEALTHCHECK_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0
#: Short names the shared REST helpers use in failure messages, and the instance they mean.
_ALIASES = {
    "scheduler": "airflow-scheduler",
    "triggerer": "airflow-triggerer",
    "dag-processor": "airflow-dag-processor",
    "api-server": "airflow-apiserver",
}


def postgres_bin() -> Path:
    """Debian's PostgreSQL binaries (``postgresql-NN``), the newest installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda path: int(path.parts[-3]))
    if not found:
        raise StackError("PostgreSQL is not installed: run `make stack-deps`")
    return found[-1].parent


@dataclass
class ComposeStack(AirflowStack):
    """A running compose stack; the REST helpers come from :class:`AirflowStack`."""

    layout: Layout = field(default_factory=lambda: Layout(Path(tempfile.gettempdir())))
    instances: dict[str, Instance] = field(default_factory=dict)
    completed: set[str] = field(default_factory=set)
    #: The command line each instance was last started with.
    commands: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ui_url(self) -> str:
        return self.base_url

    # Logs -------------------------------------------------------------------------------------------

    @staticmethod
    def log_path(name: str) -> Path:
        return STACK_ARTIFACTS / f"{_ALIASES.get(name, name)}.log"

    def logs(self, *names: str, lines: int = TAIL_LINES) -> str:
        chosen = names or tuple(self.instances)
        return "\n".join(
            f"--- last lines of {self.log_path(name).name} ---\n{tail(self.log_path(name), lines)}"
            for name in chosen
        )

    def task_log_folder(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Path:  # type: ignore[override]
        folder = self.layout.logs / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return folder / f"map_index={map_index}" if map_index >= 0 else folder

    # Processes --------------------------------------------------------------------------------------

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def start(self, name: str) -> subprocess.Popen[bytes] | None:
        """Start an instance after its ``depends_on`` conditions hold; ``None`` for ``airflow-init``."""
        instance = self.instances[name]
        for dependency, condition in instance.depends_on.items():
            self._satisfy(dependency, condition)
        if instance.kind == "init":
            self._run_init(instance)
            return None
        if name in self.processes and self.processes[name].poll() is None:
            return self.processes[name]
        process = {"postgres": self._start_postgres, "redis": self._start_redis}.get(
            instance.kind, self._start_process
        )(instance)
        self.processes[name] = process
        if instance.kind == "emulator":
            self._attach_emulator(process)
        return process

    def _satisfy(self, dependency: str, condition: str) -> None:
        names = [name for name, inst in self.instances.items() if inst.service == dependency]
        if not names:
            raise StackError(f"depends_on names {dependency!r}, which the harness does not run")
        for name in names:
            if condition == "service_completed_successfully":
                if name not in self.completed:
                    self.start(name)
                continue
            if name not in self.processes or self.processes[name].poll() is not None:
                self.start(name)
            if condition == "service_healthy":
                self.wait_healthy(name)

    def _popen(
        self, instance: Instance, argv: Sequence[str], *, user: str | None = None
    ) -> subprocess.Popen[bytes]:
        self.commands[instance.name] = list(argv)
        with self.log_path(instance.name).open("ab") as log_file:
            return subprocess.Popen(
                list(argv),
                env=self._environment(instance),
                cwd=str(self.layout.root),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: what it forks stops with it
                user=user,
            )

    def _environment(self, instance: Instance) -> dict[str, str]:
        # The parent's environment minus its Airflow settings (pytest's unit-test mode, its dags
        # folder) and CA overrides (they would replace the emulator's CA), plus the service's.
        dropped = ("AIRFLOW", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PYTHONPATH")
        env = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
        env["PATH"] = f"{VENV_BIN}:{postgres_bin()}:{env.get('PATH', '/usr/bin:/bin')}"
        return {**env, **instance.env}

    def _argv(self, argv: Sequence[str]) -> list[str]:
        local = {"<python>": sys.executable, "<airflow>": str(VENV_BIN / "airflow")}
        return [local.get(part, part) for part in argv]

    def _start_process(self, instance: Instance) -> subprocess.Popen[bytes]:
        return self._popen(instance, self._argv(instance.argv))

    def _start_redis(self, instance: Instance) -> subprocess.Popen[bytes]:
        port = str(self.layout.ports["redis"])
        # No persistence: the compose volume-less Redis keeps nothing across restarts either.
        argv = ["redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        return self._popen(instance, argv)

    def _start_postgres(self, instance: Instance) -> subprocess.Popen[bytes]:
        data = self.layout.root / "postgres-data"
        if not data.exists():
            self._initdb(instance, data)
        argv = [
            str(postgres_bin() / "postgres"),
            "-D", str(data),
            "-p", str(self.layout.ports["postgres"]),
            "-k", str(data),
            "-c", "listen_addresses=127.0.0.1",
            # A throw-away cluster: durability against power loss is not under test, speed is.
            "-c", "fsync=off",
        ]  # fmt: skip
        return self._popen(instance, argv, user="postgres")  # it refuses to run as root

    def _initdb(self, instance: Instance, data: Path) -> None:
        """``initdb`` as the image's entrypoint does it: POSTGRES_USER, its password, POSTGRES_DB."""
        data.mkdir(mode=0o700)
        shutil.chown(data, "postgres", "postgres")
        password = self.layout.root / "postgres-password"
        password.write_text(instance.env.get("POSTGRES_PASSWORD", "") + "\n")
        shutil.chown(password, "postgres", "postgres")
        user = instance.env.get("POSTGRES_USER", "postgres")
        argv = [str(postgres_bin() / "initdb"), "-D", str(data), "-U", user, f"--pwfile={password}"]
        argv += ["--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8"]
        with self.log_path(instance.name).open("ab") as log_file:
            done = subprocess.run(
                argv, stdout=log_file, stderr=subprocess.STDOUT, user="postgres", check=False, timeout=120
            )
        if done.returncode != 0:
            raise StackError(f"initdb failed ({done.returncode})\n{self.logs(instance.name)}")

    def _create_database(self, instance: Instance) -> None:
        user = instance.env.get("POSTGRES_USER", "postgres")
        database = instance.env.get("POSTGRES_DB", user)
        if database == "postgres":
            return
        psql = [str(postgres_bin() / "psql"), "-h", str(self.layout.root / "postgres-data")]
        psql += ["-p", str(self.layout.ports["postgres"]), "-U", user, "-d", "postgres", "-tAc"]
        exists = subprocess.run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{database}'"],
                                capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
        if exists.stdout.strip() != "1":
            subprocess.run(
                [*psql, f'CREATE DATABASE "{database}"'], capture_output=True, check=True, timeout=60
            )

    def _attach_emulator(self, process: subprocess.Popen[bytes]) -> None:
        """Read the ready line from the emulator's log; the handle talks to it on 127.0.0.1."""

        def ready() -> dict[str, Any] | None:
            if process.poll() is not None:
                raise StackError(
                    f"the emulator exited with code {process.returncode}\n{self.logs('emulator')}"
                )
            for line in self.log_path("emulator").read_text(errors="replace").splitlines():
                if line.startswith('{"url"'):
                    info: dict[str, Any] = json.loads(line)
                    return info
            return None

        info = wait_for(
            ready,
            timeout=HEALTH_TIMEOUT_S,
            what="the emulator's ready line",
            explain=lambda: self.logs("emulator"),
        )
        # This process does not resolve the service name `emulator`; the certificate also names
        # 127.0.0.1, so the test's own calls go there.
        info["url"] = info["url"].replace("://emulator:", "://127.0.0.1:")
        self.emulator.info = info

    def _run_init(self, instance: Instance) -> None:
        self.commands[instance.name] = self._argv(instance.argv)
        with self.log_path(instance.name).open("ab") as log_file:
            done = subprocess.run(
                self._argv(instance.argv),
                env=self._environment(instance),
                cwd=str(self.layout.root),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=INIT_TIMEOUT_S,
                check=False,
            )
        if done.returncode != 0:
            raise StackError(
                f"{instance.name} exited with code {done.returncode}\n{self.logs(instance.name, lines=60)}"
            )
        self.completed.add(instance.name)

    def wait_healthy(self, name: str, *, timeout: float = HEALTH_TIMEOUT_S) -> None:
        """Run the service's compose healthcheck until it passes; fail at once if the process exits."""
        instance = self.instances[name]
        if instance.health is None:
            return
        last: dict[str, str] = {"output": ""}

        def healthy() -> bool:
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise StackError(f"{name} is not running (exit code {code})\n{self.logs(name, lines=80)}")
            try:
                done = subprocess.run(
                    self._argv(instance.health or []),
                    env=self._environment(instance),
                    capture_output=True,
                    text=True,
                    timeout=HEALTHCHECK_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                last["output"] = "(healthcheck timed out)"
                return False
            last["output"] = (done.stdout + done.stderr)[-1500:]
            if done.returncode == 0 and instance.kind == "postgres":
                self._create_database(instance)
            return done.returncode == 0

        wait_for(
            healthy,
            timeout=timeout,
            what=f"{name} to be healthy ({' '.join(instance.health)})",
            explain=lambda: f"last healthcheck output:\n{last['output']}\n{self.logs(name)}",
            interval=2.0,
        )

    def stop(self, name: str, sig: int = signal.SIGTERM) -> int | None:
        """Signal the instance's process group, SIGKILL it after the grace time; its exit code."""
        process = self.processes.pop(name, None)
        if process is None:
            return None
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_S)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # what it forked and left behind, too
        if process.poll() is None:
            process.wait(timeout=STOP_GRACE_S)
        # Its children die (and are reaped by init) a moment after the leader: return once the
        # whole group is gone, so a restart never finds the old one's ports or Celery node.
        wait_for(
            lambda: not _group_alive(process.pid),
            timeout=STOP_GRACE_S,
            what=f"the process group of {name} (pid {process.pid}) to end",
            interval=0.2,
        )
        return process.returncode

    def kill(self, name: str) -> int | None:
        """SIGKILL the instance's whole process group (a crash, no clean-up)."""
        return self.stop(name, signal.SIGKILL)

    def restart(self, name: str) -> None:
        """Stop (SIGTERM) and start the instance again, and wait until it is healthy."""
        self.stop(name)
        self.start(name)
        self.wait_healthy(name)

    def check_alive(self) -> None:
        """Raise with the log of any instance that exited without being stopped by the harness."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackError(f"{name} exited with code {process.returncode}\n{self.logs(name, lines=80)}")

    # Readiness and REST -----------------------------------------------------------------------------

    def wait_ready(self, dag_ids: Sequence[str]) -> None:
        """Every instance healthy (by its compose healthcheck), the hunting pool there, the DAGs parsed."""
        for name in self.instances:
            if name in self.processes:
                self.wait_healthy(name)
        existing = {pool["name"] for pool in self.api("GET", "/api/v2/pools")["pools"]}
        for pool, slots in HUNTING_POOLS.items():
            if pool not in existing:
                self.api("POST", "/api/v2/pools", expect=(201,), json={"name": pool, "slots": slots})
        self.wait_for_dags(dag_ids)

    def trigger_dag(self, dag_id: str, **kwargs: Any) -> dict[str, Any]:
        """Trigger a run (see :meth:`AirflowStack.trigger`); a fresh ``logical_date`` of now by default."""
        kwargs.setdefault("logical_date", None)
        return self.trigger(dag_id, **kwargs)

    def describe(self) -> list[str]:
        """A line per instance: name, compose service, state, the command it was started with."""
        lines = []
        for name, instance in self.instances.items():
            process = self.processes.get(name)
            state = f"pid {process.pid}" if process else ("exited 0" if name in self.completed else "stopped")
            argv = self.commands.get(name, [])
            if argv[:2] == ["bash", "-c"]:  # the init script: its commands, not its comments
                script = [line.strip() for line in argv[2].splitlines()]
                argv = ["bash -c:", "; ".join(line for line in script if line and not line.startswith("#"))]
            command = " ".join(argv).replace(str(VENV_BIN) + "/", "")
            lines.append(f"{name:<22} {instance.service:<22} {state:<11} {command}")
        return lines


def stop_in_order(stack: ComposeStack) -> list[str]:
    """Stop the Airflow services first, then what they use (Postgres, Redis, the emulator).

    Stopped all at once, a scheduler still writing its last heartbeat meets a Postgres that is
    shutting down and exits 1. Returns a line per process saying how it ended, and the total time.
    """
    began = time.monotonic()
    processes = dict(stack.processes)
    users = {name: p for name, p in processes.items() if stack.instances[name].kind in ("airflow", "init")}
    used = {name: p for name, p in processes.items() if name not in users}
    lines = [
        line for wave in (users, used) for line in stop_processes(wave) if not line.startswith("all stopped")
    ]
    return [*lines, f"all stopped in {time.monotonic() - began:.1f} s"]


@contextmanager
def compose_stack(
    *,
    compose_file: Path = COMPOSE_FILE,
    dag_ids: Sequence[str] = EXAMPLE_DAG_IDS,
    ready: bool = True,
    dags_folder: Path | None = None,
    environment: Mapping[str, str] | None = None,
    emulator_args: Sequence[str] = (),
) -> Iterator[ComposeStack]:
    """Every service of the compose file running locally (see the module docstring); stopped after.

    :param dag_ids: DAGs that must be parsed, without import errors, before the stack is ready.
    :param ready: wait for every healthcheck, the hunting pool and the DAGs before yielding.
    :param dags_folder: what the dags mount holds (default: the repository's ``example_dags``).
    :param environment: more variables for every Airflow process, as a deployment's
        ``environment:`` override would add (e.g. short heartbeat timeouts for crash tests).
    :param emulator_args: more options for the emulator's command (e.g. a quota).
    """
    root = Path(tempfile.mkdtemp(prefix="mtp-stack-"))
    root.chmod(0o755)  # Postgres runs as its own user and must reach its data dir inside
    compose = load_compose(compose_file)
    layout = Layout(root, dags=dags_folder) if dags_folder else Layout(root)
    layout.ports = choose_ports(compose["services"])
    try:
        instances = plan(compose, layout)  # a service the harness cannot run fails here, before any start
    except ComposeError:
        shutil.rmtree(root, ignore_errors=True)
        raise
    # The previous stack's logs are kept beside (one session may start several stacks: crash,
    # then quota), so a failure in the first can still be read after the second started.
    previous = STACK_ARTIFACTS.with_name(f"{STACK_ARTIFACTS.name}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if STACK_ARTIFACTS.exists():
        STACK_ARTIFACTS.rename(previous)
    STACK_ARTIFACTS.mkdir(parents=True)
    for instance in instances.values():
        if instance.kind in ("airflow", "init"):
            instance.env.update(environment or {})
        elif instance.kind == "emulator":
            instance.argv += list(emulator_args)
    for folder in (layout.logs, layout.emulator_state, layout.airflow_home, layout.outputs):
        folder.mkdir(parents=True, exist_ok=True)
    passwords = baked_passwords()
    (layout.airflow_home / "simple_auth_manager_passwords.json").write_text(json.dumps(passwords))
    admin = next(iter(passwords.items()))
    stack = ComposeStack(
        home=layout.airflow_home,
        port=layout.ports["airflow-apiserver"],
        env=instances["airflow-apiserver"].env,
        emulator=DefenderEmulator(),
        webhook=WebhookSink(),
        output_root=layout.outputs,
        admin=admin,
        layout=layout,
        instances=instances,
    )
    try:
        for name in instances:
            stack.start(name)
        if ready:
            stack.wait_ready(dag_ids)
        yield stack
    finally:
        report = stop_in_order(stack)
        (STACK_ARTIFACTS / "stopped.log").write_text("\n".join(report) + "\n")
        stack.processes.clear()
        shutil.copytree(layout.logs, STACK_ARTIFACTS / "task-logs", dirs_exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)
