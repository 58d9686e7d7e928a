"""The Spark session settings per environment, for dagster-pyspark's lazy resource."""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster_pyspark import LazyPySparkResource
from pydantic import PrivateAttr
from pyspark.sql import SparkSession

from data_mesh.settings.model import Settings
from data_mesh.settings.secrets import literal_secret_in

# Warnings and errors of the JVM's loggers on stderr, without Spark's start-up notes.
LOG4J2_CONFIG = Path(__file__).with_name("log4j2.properties")


def _spark_slf4j_api() -> list[str]:
    """Spark's own SLF4J 2 API jar. Debian's h2.jar names /usr/share/java/slf4j-api.jar (SLF4J
    1.7) in its manifest's Class-Path, so on the driver's extraClassPath it comes before Spark's
    jars: SLF4J 1.7 then finds no binder, prints "SLF4J: Failed to load class
    org.slf4j.impl.StaticLoggerBinder" and drops every log of the JVM. Put first, Spark's API
    binds to its log4j2 as it should."""
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    return sorted(str(jar) for jar in jars.glob("slf4j-api-*.jar"))


def spark_config(settings: Settings) -> dict[str, str]:
    if settings.spark_remote:
        # Spark Connect: the server owns master, memory and jars; only session settings here.
        return {"spark.remote": settings.spark_remote, "spark.sql.session.timeZone": "UTC"}
    jars = ",".join(jar for jar in settings.jdbc_jars if Path(jar).is_file())
    # Derby's metastore files would land in the working directory otherwise.
    java_options = [f"-Dderby.system.home={settings.home_dir / 'derby'}"]
    if LOG4J2_CONFIG.is_file():
        java_options.append(f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}")
    config = {
        "spark.master": settings.spark_master,
        "spark.app.name": "data_mesh",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(settings.home_dir / "spark-warehouse"),
        "spark.ui.showConsoleProgress": "false",
        # A quality pass has aggregates per rule and metric: its plan, in the Spark UI, stays
        # whole (and Spark does not warn on stderr that it cut it short).
        "spark.sql.debug.maxToStringFields": "1000",
        "spark.driver.extraJavaOptions": " ".join(java_options),
    }
    if jars:
        # extraClassPath puts the drivers where java.sql.DriverManager finds them too.
        config["spark.jars"] = jars
        config["spark.driver.extraClassPath"] = ":".join([*_spark_slf4j_api(), *jars.split(",")])
    return config


def use_this_python_for_workers() -> None:
    """Python workers (the DDZ writer's COPY tasks) must see this interpreter's packages.

    PySpark reads only the PYSPARK_PYTHON variable for that (not `spark.pyspark.python`).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


# --- Secrets out of the Spark JVM's environment -------------------------------------------
# Spark SQL can read its JVM's environment (`reflect('java.lang.System', 'getenv', ...)`), and
# the classic JVM is a child of this process, launched by pyspark with a copy of os.environ
# (pyspark takes no env of its own for it). So the secrets are taken out of os.environ while
# the JVM starts and put back at once: the JVM and the Python workers it forks never see them,
# while this process and its other children (Dagster's step processes and run workers, the
# `data-mesh` subprocesses of the tests) keep reading them by name, only when used, as before;
# the DDZ writer then hands them to JDBC as connection properties.
#
# Secret variables data_mesh reads by fixed names, and those Azure SDKs read.
FIXED_SECRET_ENV = (
    "DATA_MESH_SQL_USER",
    "DATA_MESH_SQL_PASSWORD",
    "DATA_MESH_ADLS_KEY",
    "DATA_MESH_ADLS_SAS",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_PASSWORD",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
)
# Other names that say "credential" (an `env:` reference of a row may name anything): the
# variable is hidden too; names of files, folders or of other variables are not secrets.
_SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|CREDENTIAL|API_?KEY|ACCESS_?KEY|ACCOUNT_?KEY|"
    r"PRIVATE_?KEY|CONNECTION_?STRING|CONN_?STR|(^|_)(KEY|PWD|TOKEN|SAS)$",
    re.IGNORECASE,
)
_NOT_A_SECRET = re.compile(r"_(FILE|PATH|DIR|ENV)$|^(PWD|OLDPWD)$", re.IGNORECASE)
# What the JVM and pyspark need themselves, whatever their names or values look like.
_JVM_NEEDS = re.compile(r"^_?(PY)?SPARK_|^_?JAVA|^JDK_|^HADOOP_|^YARN_|^KRB5|^PYTHON")
_JVM_START = threading.Lock()


def secret_env_for_jvm(named: Iterable[str], environ: Mapping[str, str]) -> list[str]:
    """The variables of `environ` to keep from the JVM: those `named` (by settings), the fixed
    names above, any whose name reads like a credential, and any whose value holds one (a JDBC
    URL with a password, a connection string with an account key: `env:` references of rows)."""
    wanted = {*named, *FIXED_SECRET_ENV}
    return sorted(
        name
        for name, value in environ.items()
        if name in wanted
        or (
            not _JVM_NEEDS.search(name)
            and (
                (_SECRET_NAME.search(name) and not _NOT_A_SECRET.search(name))
                or literal_secret_in(value) is not None
            )
        )
    )


def settings_secret_env(settings: Settings) -> list[str]:
    """Names of the variables the settings say hold secrets."""
    names = [settings.ddz_user_env, settings.ddz_password_env]
    if settings.adls_connection_string_env:
        names.append(settings.adls_connection_string_env)
    return names


@contextmanager
def secrets_hidden_from_jvm(named: Iterable[str]) -> Iterator[list[str]]:
    """os.environ without the secrets (`secret_env_for_jvm`) inside the block, for a JVM to start
    in; yields the names taken out. One block at a time, so two never restore each other's."""
    with _JVM_START:
        hidden = {name: os.environ.pop(name) for name in secret_env_for_jvm(named, os.environ)}
        try:
            yield sorted(hidden)
        finally:
            os.environ.update(hidden)


# Lines the JVM writes to stderr that are no problem: Spark's launcher always adds
# `--add-modules=jdk.incubator.vector` (JavaModuleOptions, not a setting), and the JDK then
# announces it; no JVM option silences that announcement.
_JVM_NOISE = re.compile(rb"^WARNING: Using incubator modules: ")


def _forward_stderr(source: int, target: int) -> None:
    """Copy the JVM's stderr lines from `source` to `target`, but the noise; until the JVM (and
    every process that inherited the pipe) closes it."""
    with os.fdopen(source, "rb") as lines, os.fdopen(target, "wb", buffering=0) as out:
        for line in lines:
            if not _JVM_NOISE.match(line):
                out.write(line)


@contextmanager
def jvm_stderr_filtered() -> Iterator[None]:
    """A JVM started inside the block (pyspark's Popen inherits fd 2) gets a pipe as its stderr,
    read by a thread that passes on every line but `_JVM_NOISE`; this process's own stderr is
    put back when the block ends. pyspark has no public way to give its JVM a stderr."""
    try:
        original = os.dup(2)
    except OSError:  # no stderr at all: nothing to filter
        yield
        return
    read_end, write_end = os.pipe()
    forwarded = os.dup(original)
    threading.Thread(
        target=_forward_stderr, args=(read_end, forwarded), name="jvm-stderr", daemon=True
    ).start()
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)
        os.close(original)


@contextmanager
def starting_jvm(secret_env: Iterable[str]) -> Iterator[None]:
    """The block in which a Spark session (and its JVM, if none runs yet) is made: without the
    secrets in its environment, without its start-up noise on stderr."""
    with secrets_hidden_from_jvm(secret_env), jvm_stderr_filtered():
        yield


class DataMeshSparkResource(LazyPySparkResource):
    """dagster-pyspark's lazy session, whose JVM starts without the secrets in its environment."""

    # Names (never values) of the variables the settings say hold secrets.
    secret_env: list[str]
    _session: Any = PrivateAttr(default=None)

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    @property
    def spark_session(self) -> Any:
        if self._session is None:
            # A process that runs several Dagster runs (a backfill of `data-mesh materialize`)
            # gets a resource per run: the session of the first is reused as it is (the
            # builder would do the same, warning that only runtime SQL settings apply).
            self._session = SparkSession.getActiveSession()
        if self._session is None:
            with starting_jvm(self.secret_env):
                self._session = super().spark_session
        return self._session

    @property
    def spark_context(self) -> Any:
        return self.spark_session.sparkContext


def spark_resource(settings: Settings) -> LazyPySparkResource:
    use_this_python_for_workers()
    return DataMeshSparkResource(
        spark_config=spark_config(settings), secret_env=settings_secret_env(settings)
    )


def spark_session(settings: Settings) -> SparkSession:
    """A session with the environment's settings, outside Dagster (CLI commands); a JVM it
    starts has no secret in its environment."""
    use_this_python_for_workers()
    builder = SparkSession.builder
    for key, value in spark_config(settings).items():
        builder = builder.config(key, value)
    with starting_jvm(settings_secret_env(settings)):
        return builder.getOrCreate()
