"""``docker-compose.yaml`` read and turned into local processes: what each service runs, and with what.

:func:`load_compose` reads the file as Compose does (YAML merge keys for the ``x-*`` anchors,
``${VAR:-default}`` and ``$$`` interpolation). :func:`plan` turns every service into one or more
:class:`Instance` (the command line, environment and healthcheck of a local process) with the
mapping below. Anything the mapping does not know (a service, an image, a command, an environment
variable, an image path in a script) raises :class:`ComposeError` naming it, so the file and what
runs cannot drift apart.

The mapping:

* host names -> ``127.0.0.1`` in the URLs of the Airflow environment (``postgres``, ``redis``,
  ``airflow-apiserver``), with the local port; ``emulator`` keeps its name (it is in the emulator's
  certificate and in every URL it advertises) and resolves to ``127.0.0.1`` inside the stack's Python
  processes through ``tests/stack/site/sitecustomize.py`` (no ``/etc/hosts`` change);
* published ports as the file says when free, else a free one; unpublished ones (Postgres, Redis,
  the scheduler's health port) a free one;
* volumes -> folders under the stack's root: the dags mount is the repository's ``example_dags``;
* ``airflow-worker`` runs :data:`WORKERS` times, each with its own ``HOSTNAME`` and Celery node name.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
SITE_DIR = Path(__file__).resolve().parent / "site"
#: Celery workers started for the one ``airflow-worker`` service, as issue 12 asks.
WORKERS = 2
#: Airflow sub-commands a service's ``command`` may be.
AIRFLOW_COMMANDS = ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker")
#: The emulator's command, up to its options.
EMULATOR_COMMAND = ["python", "-m", "airflow_provider_mtp.emulator"]
#: Paths of the image, and what stands for them here (see :class:`Layout`).
IMAGE_PATHS = ("/opt/airflow/dags", "/opt/airflow/logs", "/emulator-state")
#: Services under a Compose profile are not started by ``docker compose up``; nor here.
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class ComposeError(ValueError):
    """The compose file asks for something the harness cannot run as a local process."""


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """Compose's interpolation of every string in ``value``: ``${VAR}``, ``${VAR:-default}``, ``$$``."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1) or match.group(3)
            default = match.group(2)
            found = environ.get(name)
            # ":-" also replaces an empty value; this file only uses ":-".
            return found if found else (default or "")

        return _VAR.sub(substitute, value)
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    return value


def load_compose(path: Path = COMPOSE_FILE, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file with its anchors merged (YAML ``<<``) and its variables interpolated."""
    import os

    document = yaml.safe_load(path.read_text())
    result: dict[str, Any] = interpolate(document, os.environ if environ is None else environ)
    return result


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Layout:
    """Where the stack's volumes and state live, and its ports."""

    root: Path
    dags: Path = REPO / "example_dags"
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.root / "airflow-logs"

    @property
    def emulator_state(self) -> Path:
        return self.root / "emulator-state"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow-home"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    def image_path(self, text: str) -> str:
        """``text`` with the image's paths replaced by their local folders."""
        local = {
            "/opt/airflow/dags": self.dags,
            "/opt/airflow/logs": self.logs,
            "/emulator-state": self.emulator_state,
        }
        for image, here in local.items():
            text = text.replace(image, str(here))
        return text


@dataclass
class Instance:
    """One local process for a compose service (``airflow-worker`` has :data:`WORKERS` of them)."""

    name: str
    service: str
    kind: str  # postgres, redis, emulator, airflow, init
    argv: list[str]
    env: dict[str, str]
    health: list[str] | None
    depends_on: dict[str, str]
    user: str | None = None


def _published(spec: dict[str, Any], container_port: int) -> int | None:
    """The host port the service publishes ``container_port`` on, if it does."""
    for entry in spec.get("ports", []):
        parts = str(entry).split(":")
        if len(parts) >= 2 and int(parts[-1]) == container_port:
            return int(parts[-2])
    return None


def choose_ports(services: dict[str, Any]) -> dict[str, int]:
    """Local ports: the published one where free, else (and for unpublished ones) a free one."""

    def pick(wanted: int | None) -> int:
        return wanted if wanted is not None and port_free(wanted) else free_port()

    return {
        "postgres": free_port(),
        "redis": free_port(),
        "emulator": pick(_published(services.get("emulator", {}), 8443)),
        "airflow-apiserver": pick(_published(services.get("airflow-apiserver", {}), 8080)),
        "scheduler-health": pick(8974),
        **{f"worker-log-{n}": free_port() for n in range(1, WORKERS + 1)},
        "trigger-log": free_port(),
    }


# --------------------------------------------------------------------------------------------------
# The Airflow environment: every variable the file sets, and how it becomes local
# --------------------------------------------------------------------------------------------------


def _url_host(value: str, names: Mapping[str, str]) -> str:
    """``scheme://user:pw@service[:port]/...`` with the service replaced by ``127.0.0.1:<local port>``."""
    for service, address in names.items():
        value = re.sub(rf"(?<=[@/]){re.escape(service)}(:\d+)?(?=[/]|$)", address, value)
    return value


def _connection(value: str, layout: Layout) -> str:
    """``mtp_default``: the emulator keeps its name, on the local port; the CA from the local state dir."""
    conn = json.loads(value)
    extra = conn.get("extra", {})
    for key in ("api_url", "login_url"):
        if key in extra:
            extra[key] = re.sub(
                r"^https://emulator:\d+", f"https://emulator:{layout.ports['emulator']}", extra[key]
            )
    if "ca_bundle" in extra:
        extra["ca_bundle"] = layout.image_path(extra["ca_bundle"])
    return json.dumps(conn)


def _keep(value: str, layout: Layout) -> str:
    return value


def _service_urls(value: str, layout: Layout) -> str:
    names = {
        service: f"127.0.0.1:{layout.ports[service]}"
        for service in ("postgres", "redis", "airflow-apiserver")
    }
    return _url_host(value, names)


def _password_file(value: str, layout: Layout) -> str:
    return str(layout.airflow_home / Path(value).name)


def _api_port(value: str, layout: Layout) -> str:
    return str(layout.ports["airflow-apiserver"])


#: Every variable the file may set for a service, and its local value.
ENVIRONMENT: dict[str, Callable[[str, Layout], str]] = {
    "AIRFLOW__CORE__EXECUTOR": _keep,
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _service_urls,
    "AIRFLOW__CELERY__RESULT_BACKEND": _service_urls,
    "AIRFLOW__CELERY__BROKER_URL": _service_urls,
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": _service_urls,
    "AIRFLOW__API_AUTH__JWT_SECRET": _keep,
    "AIRFLOW__CORE__FERNET_KEY": _keep,
    "AIRFLOW__CORE__AUTH_MANAGER": _keep,
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": _keep,
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": _password_file,
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": _keep,
    "AIRFLOW__CORE__LOAD_EXAMPLES": _keep,
    "AIRFLOW__CORE__TEST_CONNECTION": _keep,
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": _keep,
    "AIRFLOW_CONN_MTP_DEFAULT": _connection,
    # The image's entrypoint reads these; harmless here, where there is no entrypoint.
    "DUMB_INIT_SETSID": _keep,
    "CONNECTION_CHECK_MAX_COUNT": _keep,
    "AIRFLOW_UID": _keep,
    "AIRFLOW_API_PORT": _api_port,
}


def local_environment(service: str, environment: Mapping[str, str], layout: Layout) -> dict[str, str]:
    """The service's variables made local; an unknown one is a :class:`ComposeError`."""
    env = {}
    for name, value in environment.items():
        if name not in ENVIRONMENT:
            raise ComposeError(
                f"service {service!r}: environment variable {name} is not one the stack harness knows "
                f"how to run locally (tests/stack/compose.py ENVIRONMENT)"
            )
        env[name] = ENVIRONMENT[name](str(value), layout)
    return env


def harness_environment(layout: Layout) -> dict[str, str]:
    """What a container has from its image or from Docker, set for the local Airflow processes."""
    api = f"http://127.0.0.1:{layout.ports['airflow-apiserver']}"
    return {
        # The image's AIRFLOW_HOME and its mounts.
        "AIRFLOW_HOME": str(layout.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(layout.dags),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(layout.logs),
        # Published ports: the api-server on the host port, loopback only.
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(layout.ports["airflow-apiserver"]),
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(layout.ports["scheduler-health"]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(layout.ports["trigger-log"]),
        # Containers are small machines; on 2 shared cores the defaults (4 api workers, 16 Celery
        # processes per worker) only thrash.
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        # Names (see site/sitecustomize.py) and a hostname per service instance.
        "PYTHONPATH": str(SITE_DIR),
        "MTP_STACK_HOSTS": "emulator=127.0.0.1",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "sitecustomize.container_hostname",
        # A container's /tmp is its own; the examples' default output root (/tmp/mtp-output) is not.
        "MTP_OUTPUT_ROOT": layout.outputs.as_uri(),
        "PYTHONUNBUFFERED": "1",
    }


# --------------------------------------------------------------------------------------------------
# Services
# --------------------------------------------------------------------------------------------------


def _health(spec: dict[str, Any], layout: Layout, service: str, hostname: str) -> list[str] | None:
    """The service's healthcheck as a local command: its ports and image paths made local."""
    test = (spec.get("healthcheck") or {}).get("test")
    if not test:
        return None
    container_ports = {
        "emulator": {8443: layout.ports["emulator"]},
        "airflow-apiserver": {8080: layout.ports["airflow-apiserver"]},
        "airflow-scheduler": {8974: layout.ports["scheduler-health"]},
    }.get(service, {})

    def local(text: str) -> str:
        for inside, here in container_ports.items():
            text = text.replace(f"localhost:{inside}", f"127.0.0.1:{here}")
        return layout.image_path(text.replace("${HOSTNAME}", hostname))

    kind, *rest = test
    if kind == "CMD-SHELL":
        return ["bash", "-c", local(rest[0])]
    if kind != "CMD":
        raise ComposeError(f"service {service!r}: healthcheck {kind} is not CMD or CMD-SHELL")
    argv = [local(part) for part in rest]
    if argv[0] == "pg_isready":
        argv += ["-h", "127.0.0.1", "-p", str(layout.ports["postgres"])]
    elif argv[0] == "redis-cli":
        argv[1:1] = ["-p", str(layout.ports["redis"])]
    elif argv[0] == "python":
        argv[0] = "<python>"  # this venv's interpreter, filled in by the harness
    elif argv[0] != "curl":
        raise ComposeError(
            f"service {service!r}: healthcheck command {argv[0]!r} is not one the harness runs"
        )
    return argv


def _depends(spec: dict[str, Any], service: str) -> dict[str, str]:
    found = {}
    for name, rule in (spec.get("depends_on") or {}).items():
        condition = (rule or {}).get("condition", "service_started")
        if condition not in ("service_started", "service_healthy", "service_completed_successfully"):
            raise ComposeError(f"service {service!r}: depends_on {name} condition {condition!r} is unknown")
        found[name] = condition
    return found


def _emulator_argv(service: str, command: list[str], layout: Layout) -> list[str]:
    if [str(part) for part in command[:3]] != EMULATOR_COMMAND:
        raise ComposeError(f"service {service!r}: command {command!r} is not the emulator's")
    argv = ["<python>", "-m", EMULATOR_COMMAND[2]]
    options = [str(part) for part in command[3:]]
    replaced = {"--host": "127.0.0.1", "--port": str(layout.ports["emulator"])}
    for index, part in enumerate(options):
        previous = options[index - 1] if index else ""
        argv.append(replaced.get(previous, layout.image_path(part) if previous == "--state-dir" else part))
    return argv


def _init_argv(service: str, spec: dict[str, Any], layout: Layout) -> list[str]:
    """``airflow-init``'s bash script, with the image's entrypoint and paths made local."""
    command = spec.get("command")
    if spec.get("entrypoint") != "/bin/bash" or not isinstance(command, list) or command[:1] != ["-c"]:
        raise ComposeError(f"service {service!r}: entrypoint/command is not a bash -c script")
    # /entrypoint waits for the database and runs its arguments; depends_on has waited already.
    script = layout.image_path(str(command[1]).replace("/entrypoint ", ""))
    leftover = re.findall(r"(?<![\w.])/(?:opt|entrypoint|home|emulator-state)\S*", script)
    if leftover:
        raise ComposeError(f"service {service!r}: script uses image paths the harness cannot map: {leftover}")
    return ["bash", "-c", script]


def plan(compose: dict[str, Any], layout: Layout) -> dict[str, Instance]:
    """Every instance to run, by name, in the file's order; :class:`ComposeError` for what cannot run."""
    instances: dict[str, Instance] = {}
    for service, spec in compose.get("services", {}).items():
        if spec.get("profiles"):
            continue  # started only on request in Compose too (airflow-cli)
        for instance in _instances(service, spec, layout):
            instances[instance.name] = instance
    return instances


def _instances(service: str, spec: dict[str, Any], layout: Layout) -> list[Instance]:
    image = str(spec.get("image", ""))
    depends = _depends(spec, service)
    command = spec.get("command")
    if image.startswith("postgres:"):
        env = {key: str(value) for key, value in (spec.get("environment") or {}).items()}
        unknown = sorted(set(env) - {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"})
        if unknown:
            raise ComposeError(
                f"service {service!r}: environment variables {unknown} are unknown to the harness"
            )
        return [
            Instance(service, service, "postgres", [], env, _health(spec, layout, service, service), depends)
        ]
    if image.startswith("redis:"):
        if spec.get("environment") or command:
            raise ComposeError(f"service {service!r}: the harness runs redis-server without options")
        return [Instance(service, service, "redis", [], {}, _health(spec, layout, service, service), depends)]
    if not image.startswith("airflow-provider-mtp"):
        raise ComposeError(
            f"service {service!r}: image {image!r} is not one the stack harness can run as a local "
            "process (postgres:*, redis:* or this repository's image)"
        )
    base = {
        **harness_environment(layout),
        **local_environment(service, spec.get("environment") or {}, layout),
    }
    if service == "emulator":
        argv = _emulator_argv(service, list(command or []), layout)
        return [
            Instance(
                service, service, "emulator", argv, base, _health(spec, layout, service, service), depends
            )
        ]
    if spec.get("entrypoint") is not None:
        argv = _init_argv(service, spec, layout)
        return [Instance(service, service, "init", argv, {**base, "HOSTNAME": service}, None, depends)]
    if not (isinstance(command, str) and command in AIRFLOW_COMMANDS):
        raise ComposeError(
            f"service {service!r}: command {command!r} is not one the stack harness knows how to run "
            f"(airflow {', airflow '.join(AIRFLOW_COMMANDS)}, the emulator, or the init script)"
        )
    copies = WORKERS if command == "celery worker" else 1
    found = []
    for number in range(1, copies + 1):
        name = f"{service}-{number}" if copies > 1 else service
        argv = ["<airflow>", *shlex.split(command)]
        env = {**base, "HOSTNAME": name}
        if command == "celery worker":
            # A container's node name is celery@<its hostname>; its log server has the port to itself.
            argv += ["--celery-hostname", f"celery@{name}"]
            env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(layout.ports[f"worker-log-{number}"])
        found.append(
            Instance(name, service, "airflow", argv, env, _health(spec, layout, service, name), depends)
        )
    return found


def baked_passwords() -> dict[str, str]:
    """The SimpleAuthManager password file the Dockerfile bakes into the image (the UI's login)."""
    match = re.search(
        r"echo '(\{.*?\})' > /opt/airflow/simple_auth_manager_passwords\.json", DOCKERFILE.read_text()
    )
    if match is None:
        raise ComposeError(
            "the Dockerfile no longer writes simple_auth_manager_passwords.json as the harness expects"
        )
    passwords: dict[str, str] = json.loads(match.group(1))
    return passwords
