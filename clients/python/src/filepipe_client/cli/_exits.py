"""The ``filepipe`` command's exit codes, and the one-line message for each error."""

from __future__ import annotations

from filepipe_client._errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionFailed,
    FilepipeError,
    RateLimited,
    RequestRefused,
    ServerError,
)

OK = 0
FAILED = 1
"""A file ended REJECTED, FAILED, EXPIRED, QUARANTINED or MISSING, or any other error."""
USAGE = 2
AUTHENTICATION = 3
UNREACHABLE = 4
REFUSED = 5
UNAVAILABLE = 6
"""Rate limited (429) or the server failing (5xx), still after retries."""
INTERRUPTED = 130

EXIT_CODES = f"""\
exit codes:
  {OK}  done
  {FAILED}  a file ended REJECTED, FAILED, EXPIRED, QUARANTINED or MISSING, or another error
  {USAGE}  usage: bad arguments, no URL or no API key
  {AUTHENTICATION}  authentication: the API key was refused (401, 403)
  {UNREACHABLE}  the server could not be reached (connection refused, timeout)
  {REFUSED}  the server refused the request (400, 404, 409, 413, 415, 422): its detail is shown
  {UNAVAILABLE}  rate limited (429) or server errors (5xx), still after retries
  {INTERRUPTED}  interrupted (Ctrl-C); run the same upload again to resume it"""


def exit_code(error: FilepipeError) -> int:
    if isinstance(error, ConfigurationError):
        return USAGE
    if isinstance(error, AuthenticationError):
        return AUTHENTICATION
    if isinstance(error, ConnectionFailed):
        return UNREACHABLE
    if isinstance(error, RequestRefused):
        return REFUSED
    if isinstance(error, RateLimited | ServerError):
        return UNAVAILABLE
    return FAILED


def message(error: FilepipeError) -> str:
    """What to tell the user, on one line."""
    if isinstance(error, AuthenticationError):
        text = f"the API key was refused ({error.status}: {error.detail})"
    elif isinstance(error, RateLimited):
        text = f"rate limited by the server (429), still after waiting: {error.detail}"
    elif isinstance(error, ServerError):
        text = f"the server failed ({error.status}), still after retries: {error.detail}"
    elif isinstance(error, RequestRefused):
        text = f"refused ({error.status}): {error.detail}"
    else:
        text = str(error)
    return " ".join(text.split())
