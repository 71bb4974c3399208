"""Comment markers: which task instance posted a comment, in a form nobody else can forge.

The incident operators append a marker to every comment they post and, before posting, look for
it among the incident's comments, so a retried task does not comment twice. A marker anybody can
compute (the DAG, task and run ids are visible to everyone who can see the DAG) would let anyone
who may comment on an incident post it first and so suppress the task's comment. So the marker
ends in an HMAC-SHA256 of the task instance and the incident under a key derived from a secret
that people who can only comment do not hold::

    [airflow:<dag_id>/<task_id>/<run_id>#<map_index> <32 hex digits>]

The key (:func:`marker_key`) is, in this order:

1. the connection extra ``comment_marker_key``, when set (it survives credential rotation);
2. the connection's credential secret: client secret, certificate (PEM text or the file at
   ``certificate_path``), or user password;
3. Airflow's ``[core] fernet_key``;
4. none of them (managed or workload identity without the extra or a Fernet key): a fixed public
   key, and a warning, once per connection and process, that the markers are predictable.

The secret enters through HMAC-SHA256 under a domain-separation label, and the marker holds 128
bits of a second HMAC: it cannot be used to recover the secret or the derived key. The same key
must be in use on every try of a task instance; a secret rotated between two tries gives the
retry a different marker, and it does not recognise the first try's comment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_mtp.settings import ConnectionSettings

__all__ = ["MarkerKey", "comment_marker", "has_marker", "marker_key"]

log = logging.getLogger(__name__)

#: Domain separation: the key made from a credential is used for nothing else.
_LABEL = b"airflow-provider-mtp/incident-comment-marker/v1"
#: Hex digits of the HMAC kept in a marker (128 bits).
_MAC_HEX_DIGITS = 32

_warned: set[str] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class MarkerKey:
    """A derived marker key and where it came from (never the secret itself).

    :param key: 32 bytes of HMAC key.
    :param source: what it was derived from, for logs: ``comment_marker_key``, ``client secret``,
        ``certificate``, ``user password``, ``fernet_key`` or ``none``.
    """

    key: bytes = field(repr=False)
    source: str

    @property
    def predictable(self) -> bool:
        """Whether anybody can compute the markers (no secret was available)."""
        return self.source == "none"


def marker_key(
    settings: ConnectionSettings, *, fernet_key: Callable[[], str | None] | None = None
) -> MarkerKey:
    """The key a connection's comment markers are computed with.

    :param settings: the connection.
    :param fernet_key: returns Airflow's ``[core] fernet_key`` (or ``None``); the default reads
        Airflow's configuration.
    """
    for source, secret in _secrets(settings):
        if secret:
            return MarkerKey(key=_derive(secret), source=source)
    value = (fernet_key or _airflow_fernet_key)()
    if value:
        return MarkerKey(key=_derive(value.encode()), source="fernet_key")
    with _warned_lock:
        first = settings.conn_id not in _warned
        _warned.add(settings.conn_id)
    if first:
        log.warning(
            "Connection %r holds no secret to key comment markers with (no comment_marker_key, client "
            "secret, certificate or user password; no [core] fernet_key): the markers are predictable, "
            "so anyone who can comment on an incident could post a task's marker first and stop the "
            "task's comment. Set the connection extra comment_marker_key to a random secret.",
            settings.conn_id,
        )
    return MarkerKey(key=_derive(b""), source="none")


def comment_marker(
    key: MarkerKey, *, dag_id: str, task_id: str, run_id: str, map_index: int | None, incident_id: str
) -> str:
    """The marker of one task instance's comment on one incident.

    The same for every try of the task instance (and after a clear) under the same key; different
    for every run, task, map index and incident.

    :param key: from :func:`marker_key`.
    :param dag_id: the DAG.
    :param task_id: the task.
    :param run_id: the DAG run.
    :param map_index: the map index; ``None`` or ``-1`` for an unmapped task.
    :param incident_id: the incident commented on.
    """
    index = -1 if map_index is None else int(map_index)
    # JSON keeps the fields apart: ("a/b", "c") and ("a", "b/c") hash differently.
    message = json.dumps([dag_id, task_id, run_id, index, str(incident_id)], ensure_ascii=False)
    mac = hmac.new(key.key, message.encode(), hashlib.sha256).hexdigest()[:_MAC_HEX_DIGITS]
    return f"[airflow:{dag_id}/{task_id}/{run_id}#{index} {mac}]"


def has_marker(incident: Mapping[str, Any], marker: str) -> bool:
    """Whether one of the incident's comments (Graph shape) carries ``marker``."""
    comments: Iterable[Any] = incident.get("comments") or ()
    return any(isinstance(item, Mapping) and marker in str(item.get("comment") or "") for item in comments)


def _secrets(settings: ConnectionSettings) -> Iterable[tuple[str, bytes | None]]:
    yield "comment_marker_key", _encoded(settings.comment_marker_key)
    yield "client secret", _encoded(settings.client_secret)
    yield "certificate", _encoded(settings.certificate)
    if settings.certificate_path:
        yield "certificate", _file_bytes(settings.certificate_path)
    yield "user password", _encoded(settings.user_password)


def _encoded(value: str | None) -> bytes | None:
    return value.encode() if value else None


def _file_bytes(path: str) -> bytes | None:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError:
        # The token call reports an unreadable certificate; here it only cannot key the marker.
        return None


def _derive(secret: bytes) -> bytes:
    return hmac.new(secret, _LABEL, hashlib.sha256).digest()


def _airflow_fernet_key() -> str | None:
    try:
        from airflow.sdk.configuration import conf

        value = conf.get("core", "fernet_key", fallback="")
    except Exception:  # any configuration failure means "no key"
        return None
    text = str(value or "").strip()
    # Without a configured key the Task SDK returns its template's placeholder, "{FERNET_KEY}".
    if not text or (text.startswith("{") and text.endswith("}")):
        return None
    return text
