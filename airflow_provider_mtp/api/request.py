"""One call to a Defender API, described without doing it; and the API it goes to, by name.

The back ends (:mod:`~airflow_provider_mtp.api.graph`, :mod:`~airflow_provider_mtp.api.legacy`)
build :class:`ApiRequest` values and parse what comes back; the transports
(:mod:`~airflow_provider_mtp.api.transport` on requests, :mod:`~airflow_provider_mtp.api.transport_async`
on aiohttp) send them under one set of rules (:mod:`~airflow_provider_mtp.api.call_rules`). A
multi-step operation (PATCH, then a comment, then a read) is a :data:`Program`: a generator that
yields requests and receives each decoded reply, run by :func:`run` or :func:`arun`.

:class:`ApiIdentity` is what a transport may say about the API in its messages; the back end
supplies it, so the transport holds no API's wording of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

__all__ = ["ApiIdentity", "ApiRequest", "Program", "ReplyKind", "arun", "run"]

T = TypeVar("T")

#: How a 2xx reply is handed back: ``json`` decoded, ``body`` (JSON decoded, other text as text,
#: ``None`` when empty), ``hunting`` as a streamed hunting result, ``response`` unread and open.
ReplyKind = Literal["json", "body", "hunting", "response"]


@dataclass(frozen=True, kw_only=True)
class ApiIdentity:
    """The API a transport talks to, as its messages name it.

    :param dialect: ``graph`` or ``legacy``, as the connection's ``api`` names it.
    :param name: the API mid-sentence (``Microsoft Graph``).
    :param permission_home: where a permission is granted, for a 403's message.
    :param token_audience: the audience a token must be for, for a second 401's message.
    """

    dialect: str
    name: str
    permission_home: str
    token_audience: str

    @property
    def title(self) -> str:
        """The API's name at the start of a sentence."""
        return self.name[:1].upper() + self.name[1:]


@dataclass(frozen=True, kw_only=True)
class ApiRequest:
    """One call: what to send, and what the rules need to know about it.

    :param method: the HTTP method.
    :param path: a path under the API origin, or an absolute URL on an allowed host.
    :param params: query parameters.
    :param json: a JSON body.
    :param idempotent: ``False`` for calls that must not run twice (a comment): not retried once
        they may have reached the service.
    :param permission: the permission the call needs, named in a 403's message when the service
        names none.
    :param query: the KQL a hunting call carries: a 400 is then a query error, and service text it
        holds is not believed to be the service's own.
    :param reply: how the 2xx reply is handed back (:data:`ReplyKind`).
    """

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    idempotent: bool = True
    permission: str | None = None
    query: str | None = None
    reply: ReplyKind = "json"


#: A multi-step operation: yields requests, receives each reply, returns its result.
Program = Generator[ApiRequest, Any, T]


def run(program: Program[T], send: Callable[[ApiRequest], Any]) -> T:
    """Run ``program`` with a sync ``send`` (a transport's :meth:`send`); its result.

    :param program: the operation.
    :param send: sends one request and returns its reply; its errors end the program.
    """
    try:
        request = next(program)
        while True:
            request = program.send(send(request))
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        program.close()


async def arun(program: Program[T], send: Callable[[ApiRequest], Awaitable[Any]]) -> T:
    """Run ``program`` with an async ``send``; the same steps as :func:`run`.

    :param program: the operation.
    :param send: sends one request and returns its reply; its errors end the program.
    """
    try:
        request = next(program)
        while True:
            request = program.send(await send(request))
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        program.close()
