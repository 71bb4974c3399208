"""One exception family per failure kind. Every message says what went wrong and how to fix it.

All derive from :class:`MTPError`, itself an ``AirflowException``: a task fails with the message,
and code can catch one kind (``except MTPPermissionError``) or all of them.

Errors that no retry can fix (:class:`MTPConfigError`: a bad argument or connection setting;
:class:`MTPQueryError`: KQL the service refused or a query over a service limit) are also
``AirflowFailException``: the task fails at once instead of spending its ``retries`` (and the
tenant's hunting quota) on the same answer. Every other kind is retried as Airflow's ``retries``
say, because time can fix it: an outage, throttling, a permission an administrator is granting.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class MTPError(AirflowException):
    """A failed call to Entra ID or a Defender API.

    :param message: what failed and how to fix it.
    :param status: the HTTP status, when there was a reply.
    :param code: the service's error code (``Forbidden``, ``AADSTS7000215``, ...).
    :param service_message: the service's own message, unchanged.
    :param request_id: the reply's request id, for Microsoft support.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        service_message: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.service_message = service_message
        self.request_id = request_id

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else ""
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class MTPConfigError(MTPError, AirflowFailException, ValueError):
    """The connection or an argument is wrong before any call is made; the task is not retried."""


class MTPAuthError(MTPError):
    """Entra ID refused to issue a token, or the API refused the token (401)."""


class MTPPermissionError(MTPError):
    """403: the app or user lacks a permission; the message names it and the API to grant it in."""


class MTPNotFoundError(MTPError):
    """404: the incident (or other resource) does not exist."""


class MTPThrottledError(MTPError):
    """429 that outlasted the retries.

    :param retry_after: seconds the service asked to wait, if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class MTPQueryError(MTPError, AirflowFailException):
    """The hunting service rejected the KQL; the message quotes its explanation; the task is not retried."""


class MTPLimitExceededError(MTPQueryError):
    """A hunt hit a service limit: the row limit, the result size cap or the timeout.

    :param limit: which one: ``rows``, ``size`` or ``timeout``.
    """

    def __init__(self, message: str, *, limit: str, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.limit = limit


class MTPServiceError(MTPError):
    """The service kept failing (5xx, dropped connections, malformed replies) after the retries."""


class MTPTokenServiceError(MTPServiceError):
    """Entra ID (or the managed identity endpoint) kept failing or throttling token requests.

    Raised after the token call's own retries (429, 500/502/503/504, dropped connections, timeouts).
    It is a service outage, not a credential problem: it is deliberately not an
    :class:`MTPAuthError`, so code that reports bad credentials on that does not report an outage.
    Running again later is the fix; triggers wait it out.

    :param retry_after: seconds Entra ID asked to wait, if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after
