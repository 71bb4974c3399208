"""Put on ``PYTHONPATH`` of the stack's Airflow and emulator processes by :mod:`tests.stack.harness`.

Two things a container gets from Docker and a local process does not:

* **Service names.** In the compose network ``emulator`` resolves to the emulator's container. Here
  ``MTP_STACK_HOSTS`` (``name=address,...``) maps such names for this Python process, without
  touching ``/etc/hosts``: every URL the emulator advertises (``--hostname emulator``: its
  certificate, its token issuer, ``@odata.nextLink``) stays as it is in the compose file.
* **A hostname of its own.** Each container's ``HOSTNAME`` is its own; two Celery workers on one
  machine would otherwise both record the machine's name on the task instances they run.
  ``AIRFLOW__CORE__HOSTNAME_CALLABLE=sitecustomize.container_hostname`` reads ``HOSTNAME``.
"""

from __future__ import annotations

import os
import socket
from typing import Any

_HOSTS = dict(
    entry.split("=", 1) for entry in os.environ.get("MTP_STACK_HOSTS", "").split(",") if "=" in entry
)

if _HOSTS:
    _getaddrinfo = socket.getaddrinfo

    def _mapped_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        return _getaddrinfo(_HOSTS.get(name, host), *args, **kwargs)

    socket.getaddrinfo = _mapped_getaddrinfo


def container_hostname() -> str:
    """This service instance's name, as a container's ``HOSTNAME`` would be."""
    return os.environ.get("HOSTNAME") or socket.getfqdn()
