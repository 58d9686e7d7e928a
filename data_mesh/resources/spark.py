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

from data_mesh.secrets import literal_secret_in
from data_mesh.settings import Settings


def spark_config(settings: Settings) -> dict[str, str]:
    if settings.spark_remote:
        # Spark Connect: the server owns master, memory and jars; only session settings here.
        return {"spark.remote": settings.spark_remote, "spark.sql.session.timeZone": "UTC"}
    jars = ",".join(jar for jar in settings.jdbc_jars if Path(jar).is_file())
    config = {
        "spark.master": settings.spark_master,
        "spark.app.name": "data_mesh",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(settings.home_dir / "spark-warehouse"),
        "spark.ui.showConsoleProgress": "false",
        # Derby's metastore files would land in the working directory otherwise.
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={settings.home_dir / 'derby'}",
    }
    if jars:
        # extraClassPath puts the drivers where java.sql.DriverManager finds them too.
        config["spark.jars"] = jars
        config["spark.driver.extraClassPath"] = jars.replace(",", ":")
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
            with secrets_hidden_from_jvm(self.secret_env):
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
    with secrets_hidden_from_jvm(settings_secret_env(settings)):
        return builder.getOrCreate()
