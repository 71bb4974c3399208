"""The one ``requests.Session`` per hook that both msal and the API calls go through.

``ca_bundle`` is passed as ``verify=`` on every request, so it wins over ``REQUESTS_CA_BUNDLE``
(requests only reads that variable when ``verify`` is left at ``True``), while proxies from the
environment still apply. The connection's ``proxy`` reaches the token calls too, because msal is
handed this same session.
"""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_mtp import __version__
from airflow_provider_mtp.errors import MTPConfigError

if TYPE_CHECKING:
    from airflow_provider_mtp.settings import ConnectionSettings

#: Microsoft asks security partners to identify their traffic this way (defender-api.md section 10).
USER_AGENT = f"MdatpPartner-AirflowProviderMTP-ApacheAirflow/{__version__}"


class ProviderSession(requests.Session):
    """A session that pins certificate verification, proxy and timeout on every request.

    :param ca_bundle: PEM bundle to verify servers with; ``None`` uses the system store (certifi).
    :param proxy: proxy URL for https and http; ``None`` leaves environment proxies in effect.
    :param timeout: ``(connect, read)`` seconds, used when a call gives none.
    """

    def __init__(
        self,
        *,
        ca_bundle: str | None = None,
        proxy: str | None = None,
        timeout: tuple[float, float] = (10.0, 200.0),
    ) -> None:
        super().__init__()
        self._verify: str | bool = ca_bundle or True
        self._timeout = timeout
        if proxy:
            self.proxies = {"https": proxy, "http": proxy}
        self.headers["User-Agent"] = USER_AGENT

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        # msal passes no verify= and may pass verify=True; neither may replace the pinned bundle.
        if kwargs.get("verify") in (None, True):
            kwargs["verify"] = self._verify
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().request(method, url, *args, **kwargs)


def ssl_context(settings: ConnectionSettings) -> ssl.SSLContext:
    """Verification the way requests does it: the connection's ``ca_bundle``, else certifi's.

    Both hooks call this before their first request (it reads files: off the event loop in
    triggers). requests would otherwise raise a bare ``OSError`` for a missing bundle, and blame
    the server's certificate for a file that holds none. A directory is taken as requests takes
    it: a folder of hashed CA certificates.

    :param settings: the connection.
    :raises MTPConfigError: the bundle is missing, unreadable or holds no PEM certificate.
    """
    path = settings.ca_bundle
    if not path:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    try:
        if os.path.isdir(path):
            return ssl.create_default_context(capath=path)
        return ssl.create_default_context(cafile=path)
    except ssl.SSLError:
        problem = "holds no PEM certificate (no '-----BEGIN CERTIFICATE-----' block that loads)"
    except FileNotFoundError:
        problem = "does not exist on this host"
    except PermissionError:
        problem = "cannot be read by this process (permission denied)"
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or type(exc).__name__})"
    raise MTPConfigError(
        f"Connection {settings.conn_id!r}: ca_bundle {path!r} {problem}. Fix: point ca_bundle at a PEM "
        "file of the CA certificates that sign the login and API hosts (readable on every worker and "
        "triggerer), or remove ca_bundle to use the system's CA store."
    )
