"""One load per slot (a DDZ table, or one partition's slice of it) at a time.

The claim is a lock held by the database for one session of the loading process: an advisory
lock on PostgreSQL, an application lock on SQL Server, a locked row on H2. A killed process's
session ends, so its claim is released without anyone cleaning up; a load that finds the claim
taken waits up to `DdzTimeouts.claim` seconds, then fails naming the load that holds it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from data_mesh.catalog.errors import DataMeshError
from data_mesh.ddz.connection import DdzConnection
from data_mesh.ddz.retry import RetryPolicy, is_transient, with_retries
from data_mesh.ddz.sessions import DdzSession, open_session, transaction

log = logging.getLogger(__name__)
POLL_S = 1.0


class LoadClaimedError(DataMeshError):
    """Another load holds the slot for longer than this load may wait."""


def holder_description(run: str) -> str:
    """Who loads: the Dagster run (when there is one), the host and the process."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    who = f"run {run}" if run else "a load"
    return f"{who} (host {socket.gethostname()}, pid {os.getpid()}, since {stamp})"


@contextmanager
def claimed(
    spark: SparkSession,
    connection: DdzConnection,
    slot_hash: str,
    where: str,
    holder: str,
    policy: RetryPolicy,
    describe: Callable[[BaseException], str] = str,
) -> Iterator[None]:
    """Hold the slot's claim for the body; wait for it up to the claim timeout. A database
    that cannot be reached is tried `policy.max_attempts` times, as every statement is."""
    dialect = connection.dialect
    wait = connection.timeouts.claim
    deadline = time.monotonic() + wait
    session: DdzSession | None = None
    said = ""  # the holder last named in the log
    broken = 0  # transient errors in a row: a database that is down is not waited for
    try:
        while True:
            try:
                if session is None:
                    session = _claim_session(spark, connection, slot_hash)
                sql, params = dialect.try_claim(slot_hash)
                if int(str(session.query(sql, params)[0][0])) == 1:
                    break
            except Exception as error:
                if not dialect.claim_busy(describe(error)):
                    broken += 1
                    if not is_transient(error) or broken >= policy.max_attempts:
                        raise
                    if session is not None:
                        # A broken connection (H2 handing its file to another process when
                        # the holder exits): the next attempt opens another.
                        session.close()
                        session = None
                    time.sleep(policy.delay(broken))
                    continue
                if session is not None:
                    session.rollback()
            broken = 0  # the claim is taken: wait for it
            holding = _holder(spark, connection, slot_hash)
            if time.monotonic() >= deadline:
                raise LoadClaimedError(
                    f"{where} is being loaded by {holding}; waited {wait} s for it "
                    "(DATA_MESH_DDZ_CLAIM_TIMEOUT), nothing was written"
                )
            if holding != said:  # said again when another load takes it first
                left = max(0, round(deadline - time.monotonic()))
                log.warning("%s is being loaded by %s; waiting up to %d s", where, holding, left)
                said = holding
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
        with_retries(lambda: _record_holder(spark, connection, slot_hash, holder), policy)
        yield
    finally:
        if session is not None:
            try:  # closing the session releases the claim
                session.close()
            except Exception as error:
                log.warning("%s: the claim's session did not close cleanly: %s", where, error)


def _claim_session(spark: SparkSession, connection: DdzConnection, slot_hash: str) -> DdzSession:
    dialect = connection.dialect
    session = open_session(spark, connection)
    try:
        with transaction(session):
            session.execute(dialect.create_schema(dialect.claims.schema))
            for sql, params in dialect.claim_session_setup(slot_hash):
                session.execute(sql, params)
    except BaseException:
        session.close()
        raise
    return session


def _record_holder(
    spark: SparkSession, connection: DdzConnection, slot_hash: str, holder: str
) -> None:
    dialect = connection.dialect
    delete, insert = dialect.record_holder()
    session = open_session(spark, connection)
    try:
        with transaction(session):
            for sql in dialect.create_claims():
                session.execute(sql)
            session.execute(delete, [slot_hash])
            session.execute(insert, [slot_hash, holder[:1000]])
    finally:
        session.close()


def _holder(spark: SparkSession, connection: DdzConnection, slot_hash: str) -> str:
    """The holder the claim's owner wrote, or "another load" when it cannot be read."""
    try:
        session = open_session(spark, connection)
        try:
            with transaction(session):
                rows = session.query(connection.dialect.holder_of(), [slot_hash])
        finally:
            session.close()
    except Exception:  # no claims table yet, or the database is busy: the message still helps
        rows = []
    return str(rows[0][0]) if rows else "another load"
