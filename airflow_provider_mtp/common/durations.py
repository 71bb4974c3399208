"""ISO 8601 durations (``PT5M``, ``P1DT2H``, ``P2W``) read by pendulum, with the rules callers need.

pendulum parses the designators, fractions (``PT1.5S``, ``P0.5D``) and the calendar units the way
.NET's ``XmlConvert`` does (a year is 365 days, a month 30), which is how Graph reads its hunting
``Timespan``. This module adds what pendulum leaves out or reads too loosely:

* lower case (``pt5m``) is accepted, as the services do;
* ``PT``, ``P1DT`` and ``P`` (no amount, or a dangling ``T``) are refused;
* a leading minus only when the caller allows it (``signed=True``, for KQL timespans);
* years and months only when the caller allows them (``calendar=True``): they are not fixed
  lengths, so a wait or a Kusto timespan refuses them.

Precision is pendulum's: one microsecond (a finer fraction is rounded to it).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

import pendulum
from pendulum.parsing.exceptions import ParserError

__all__ = ["InvalidDurationError", "iso_duration", "leading_iso_duration"]

# An amount before each designator and no dangling T: what pendulum's own check lets through.
_HAS_AMOUNT: Final = re.compile(r"\d[YMWDHS]")
# The run of characters an ISO duration at the start of free text can be made of.
_LEADING: Final = re.compile(r"\s*([Pp][0-9.,YyMmWwDdTtHhSs]*)")


class InvalidDurationError(ValueError):
    """Text that is not an ISO 8601 duration the caller accepts.

    :param text: the text.
    :param reason: what is wrong with it.
    :param too_long: the duration is valid but longer than a ``timedelta`` holds (999,999,999 days).
    """

    def __init__(self, text: str, reason: str, *, too_long: bool = False) -> None:
        super().__init__(f"{text!r} is not an ISO 8601 duration: {reason}")
        self.text = text
        self.reason = reason
        self.too_long = too_long


def iso_duration(text: str, *, signed: bool = False, calendar: bool = False) -> timedelta:
    """The ``timedelta`` of an ISO 8601 duration such as ``PT5M``, ``P1DT2H30M`` or ``PT0.5S``.

    :param text: the whole text (surrounding spaces are ignored).
    :param signed: accept a leading ``-`` (a negative duration).
    :param calendar: accept years (365 days) and months (30 days).
    :raises InvalidDurationError: (a :class:`ValueError`) anything else.
    """
    body = text.strip().upper()
    negative = signed and body.startswith("-")
    if negative:
        body = body[1:]
    if not body.startswith("P") or body.endswith("T") or not _HAS_AMOUNT.search(body):
        raise InvalidDurationError(text, "expected P[nY][nM][nW][nD][T[nH][nM][nS]] with at least one amount")
    try:
        parsed = pendulum.parse(body)
    except ParserError:
        raise InvalidDurationError(
            text, "expected P[nY][nM][nW][nD][T[nH][nM][nS]] with at least one amount"
        ) from None
    except OverflowError:
        raise InvalidDurationError(text, "it is longer than 999,999,999 days", too_long=True) from None
    if not isinstance(parsed, pendulum.Duration):
        raise InvalidDurationError(text, "it is a date or a time, not a duration")
    if not calendar and (parsed.years or parsed.months):
        raise InvalidDurationError(text, "years and months have no fixed length; give days or weeks")
    duration = _as_timedelta(parsed)
    return -duration if negative else duration


def leading_iso_duration(text: str) -> timedelta | None:
    """The ISO 8601 duration that starts ``text`` (``PT5M.`` in a sentence), or ``None``.

    Trailing sentence punctuation is not part of the duration. Signs and calendar units are refused.

    :param text: free text, e.g. what follows ``again in`` in an error message.
    """
    match = _LEADING.match(text)
    if match is None:
        return None
    try:
        return iso_duration(match.group(1).rstrip(".,"))
    except InvalidDurationError:
        return None


def _as_timedelta(duration: pendulum.Duration) -> timedelta:
    # pendulum's Duration is a timedelta subclass whose days already include its years and months;
    # a plain timedelta keeps callers free of pendulum's type.
    return timedelta(days=duration.days, seconds=duration.seconds, microseconds=duration.microseconds)
