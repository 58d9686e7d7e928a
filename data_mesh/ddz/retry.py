"""Which database errors are worth retrying, and exponential backoff for them."""

from __future__ import annotations

import contextlib
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

Result = TypeVar("Result")
_SQLSTATE = re.compile(r"^[0-9A-Z]{5}$")
_NATIVE_ERROR = re.compile(r"\((\d+)\)")

# Azure SQL / SQL Server error numbers Microsoft documents as transient (resource limits,
# failovers, throttling, database not currently available) plus TCP-level resets.
TRANSIENT_SQLSERVER_ERRORS = frozenset(
    {
        4060,
        4221,
        10053,
        10054,
        10060,
        10928,
        10929,
        40143,
        40197,
        40501,
        40540,
        40613,
        49918,
        49919,
        49920,
        233,
        64,
        20,
        121,
    }
)
# SQLSTATEs: connection exceptions (class 08), admin shutdown / crash recovery (57P0x, e.g. from
# pg_terminate_backend), serialization failures and deadlocks, too many connections.
TRANSIENT_SQLSTATE_PREFIXES = ("08",)
TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01", "53300", "53400"})
TRANSIENT_MESSAGES = (
    "connection reset",
    "connection refused",
    "broken pipe",
    "server closed the connection",
    "connection is closed",
    "connection has been closed",
    "connection is broken",
    "terminating connection",
    "i/o error",
    # H2 after its holder was killed (the lock file is trusted as stale only seconds later),
    # or while another process opens or closes the file (AUTO_SERVER hands it over).
    "lock file recently modified",
    "locked by another process",
    # PostgreSQL: two sessions running the same CREATE ... IF NOT EXISTS at once (two loads
    # starting together on a new DDZ); the retry finds the object and does nothing.
    "pg_type_typname_nsp_index",
    "pg_namespace_nspname_index",
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff: spreads retries of parallel chunks apart."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


def error_codes(error: BaseException) -> tuple[str | None, int | None]:
    """(SQLSTATE, vendor error number) of a psycopg or pyodbc error, or of a Java SQLException
    via py4j."""
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate is not None:
        return str(sqlstate), None
    # pyodbc: args are (SQLSTATE, "[SQLSTATE] [driver] message (native error number)").
    args: tuple[Any, ...] = tuple(getattr(error, "args", ()))
    if len(args) == 2 and isinstance(args[0], str) and _SQLSTATE.fullmatch(args[0]):
        numbers = _NATIVE_ERROR.findall(str(args[1]))
        return args[0], int(numbers[-1]) if numbers else None
    java = getattr(error, "java_exception", None)
    while java is not None:
        try:
            if java.getClass().getName().endswith("SQLException") or hasattr(java, "getSQLState"):
                state = java.getSQLState()
                return (str(state) if state else None), int(java.getErrorCode())
            java = java.getCause()
        except Exception:  # not an SQLException, or the gateway is gone
            return None, None
    return None, None


def is_transient(error: BaseException) -> bool:
    sqlstate, number = error_codes(error)
    if number is not None and number in TRANSIENT_SQLSERVER_ERRORS:
        return True
    if sqlstate is not None and (
        sqlstate in TRANSIENT_SQLSTATES or sqlstate.startswith(TRANSIENT_SQLSTATE_PREFIXES)
    ):
        return True
    text = str(error).lower()
    java = getattr(error, "java_exception", None)
    if java is not None:
        with contextlib.suppress(Exception):  # the gateway may be gone
            text += " " + str(java.toString()).lower()
    return any(fragment in text for fragment in TRANSIENT_MESSAGES)


def with_retries(
    action: Callable[[], Result],
    policy: RetryPolicy,
    on_retry: Callable[[int, BaseException], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """Run `action`, retrying transient errors with backoff; anything else is raised at once."""
    attempt = 1
    while True:
        try:
            return action()
        except Exception as error:
            if attempt >= policy.max_attempts or not is_transient(error):
                raise
            if on_retry is not None:
                on_retry(attempt, error)
            sleep(policy.delay(attempt))
            attempt += 1
