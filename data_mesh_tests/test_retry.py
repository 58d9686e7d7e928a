"""Transient-error classification and backoff."""

from __future__ import annotations

import psycopg
import pytest

from data_mesh.ddz.retry import RetryPolicy, is_transient, with_retries


class _SqlServerError(Exception):
    """Shaped like a py4j error carrying a java.sql.SQLException."""

    def __init__(self, number: int, state: str = "S0001") -> None:
        super().__init__(f"SQL Server error {number}")

        class _Java:
            def getClass(self):
                return type("C", (), {"getName": lambda self: "java.sql.SQLException"})()

            def getSQLState(self):
                return state

            def getErrorCode(self):
                return number

            def toString(self):
                return f"SQLException {number}"

        self.java_exception = _Java()


@pytest.mark.parametrize("number", [40613, 40197, 40501, 49918, 10928, 10929, 4060])
def test_azure_sql_transient_numbers_are_retried(number: int) -> None:
    assert is_transient(_SqlServerError(number))


def test_other_sql_server_errors_are_not() -> None:
    assert not is_transient(_SqlServerError(2627, "23000"))  # unique key violation


def test_postgres_classification() -> None:
    class Terminated(psycopg.errors.AdminShutdown):  # what pg_terminate_backend raises
        pass

    assert is_transient(Terminated("terminating connection due to administrator command"))
    assert is_transient(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert not is_transient(psycopg.errors.UniqueViolation("duplicate key"))
    assert not is_transient(ValueError("bad data"))


def test_backoff_retries_transient_errors_then_succeeds() -> None:
    calls, waits, retried = [], [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _SqlServerError(40613)
        return "done"

    result = with_retries(
        flaky,
        RetryPolicy(max_attempts=5, base_delay_s=1.0),
        lambda a, e: retried.append(a),
        waits.append,
    )
    assert result == "done"
    assert retried == [1, 2]
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0  # exponential, jittered


def test_non_transient_fails_fast_and_attempts_are_bounded() -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise _SqlServerError(2627, "23000")

    with pytest.raises(_SqlServerError):
        with_retries(broken, RetryPolicy(), sleep=lambda s: None)
    assert len(calls) == 1

    def always_transient() -> None:
        calls.append(1)
        raise _SqlServerError(40501)

    calls.clear()
    with pytest.raises(_SqlServerError):
        with_retries(always_transient, RetryPolicy(max_attempts=3), sleep=lambda s: None)
    assert len(calls) == 3
