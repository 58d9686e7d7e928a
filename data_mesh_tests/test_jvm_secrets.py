"""Secrets are not in the environment of the Spark JVM: Spark SQL's
`reflect('java.lang.System', 'getenv', ...)` finds nothing, while data_mesh still reads them by
name and gives the DDZ password to JDBC as a connection property.

Each JVM check runs in a process of its own: the JVM's environment is fixed when it starts, and
the suite's shared session must not be restarted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_mesh.resources.spark import secret_env_for_jvm, settings_secret_env
from data_mesh.settings.model import Settings
from data_mesh_tests.conftest import REPO

SECRET = "jvm-must-not-see-7d3e"

# Starts Spark through data_mesh's own code (the CLI's session, or the Dagster resource's),
# asks Spark SQL for each variable, then writes and reads an H2 table whose database was
# created with the DDZ password, through the connection properties data_mesh builds.
PROBE = """
import json, os, sys
from data_mesh.resources.ddz_io_manager import connection_from_env
from data_mesh.resources.environments import resources_for
from data_mesh.resources.spark import spark_session
from data_mesh.settings.model import Settings

way, names = sys.argv[1], sys.argv[2].split(",")
settings = Settings(spark_master="local[1]")
if way == "resource":
    spark = resources_for(settings)["spark"].spark_session
else:
    spark = spark_session(settings)
# What Spark SQL gives for a variable that is not set at all (reflect prints Java's null).
unset = spark.sql("SELECT reflect('java.lang.System', 'getenv', 'NEVER_SET_X9')").first()[0]
seen = {
    name: spark.sql(f"SELECT reflect('java.lang.System', 'getenv', '{name}')").first()[0]
    for name in names
}
seen = {name: None if value == unset else value for name, value in seen.items()}
connection = connection_from_env(
    settings.ddz_jdbc_url, settings.ddz_user_env, settings.ddz_password_env
)
spark.range(3).write.jdbc(connection.url, "T", properties=connection.properties)
rows = spark.read.jdbc(connection.url, "T", properties=connection.properties).count()
try:
    spark.read.jdbc(connection.url, "T", properties={"user": "sa", "password": "wrong"}).count()
    refused = False
except Exception:
    refused = True
print("RESULT " + json.dumps({
    "jvm": seen,
    "unset": unset,
    "python": {name: os.environ.get(name) for name in names},
    "password_property": connection.properties.get("password"),
    "rows": rows,
    "wrong_password_refused": refused,
}))
"""
NAMES = {
    "DATA_MESH_DDZ_PASSWORD": SECRET,
    "DATA_MESH_DDZ_USER": "sa",
    "DATA_MESH_SQL_PASSWORD": SECRET,
    "AZURE_CLIENT_SECRET": SECRET,
    # An `env:` reference of a DataSource row: a JDBC URL holding a password.
    "ORDERS_SOURCE_URL": f"jdbc:postgresql://db:5432/orders?user=app&password={SECRET}",
    # Not secrets: left for the JVM.
    "DATA_MESH_SPARK_MASTER": "local[1]",
    "ORDERS_SOURCE_HOST": "db.example.com",
}


@pytest.mark.slow
@pytest.mark.parametrize("way", ["cli", "resource"])
def test_spark_sql_cannot_read_secrets_from_its_environment(tmp_path: Path, way: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATA_MESH_")}
    env.update(NAMES)
    env.update(
        DATA_MESH_HOME=str(tmp_path / "home"),
        DATA_MESH_DDZ_JDBC_URL=f"jdbc:h2:file:{tmp_path / 'ddz'}",
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE, way, ",".join(NAMES)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    found = json.loads(line.removeprefix("RESULT "))
    assert found["unset"] in (None, "null")  # Spark's answer for a variable that is not set
    assert found["jvm"] == {
        "DATA_MESH_DDZ_PASSWORD": None,
        "DATA_MESH_DDZ_USER": None,
        "DATA_MESH_SQL_PASSWORD": None,
        "AZURE_CLIENT_SECRET": None,
        "ORDERS_SOURCE_URL": None,
        "DATA_MESH_SPARK_MASTER": "local[1]",
        "ORDERS_SOURCE_HOST": "db.example.com",
    }
    # data_mesh itself still has them, and JDBC gets the password as a property.
    assert found["python"] == NAMES
    assert found["password_property"] == SECRET
    assert found["rows"] == 3
    assert found["wrong_password_refused"]
    assert SECRET not in result.stdout.replace(line, "") + result.stderr


def test_which_variables_the_jvm_does_not_get() -> None:
    settings = Settings(ddz_password_env="MY_DDZ_PW", adls_connection_string_env="MY_LAKE")
    environ = {
        "MY_DDZ_PW": "x",
        "MY_LAKE": "UseDevelopmentStorage=true",
        "DATA_MESH_DDZ_USER": "u",
        "DATA_MESH_ADLS_KEY": "k",
        "AZURE_CLIENT_SECRET": "s",
        "SOME_API_KEY": "k",
        "GITHUB_TOKEN": "t",
        "WEBHOOK": "https://hooks.example.com/x?sig=abc",
        "PAYMENTS_DB": "Server=db;Password=p;",
        # Not secrets, or needed by Spark and pyspark themselves.
        "DATA_MESH_DDZ_PASSWORD_ENV": "MY_DDZ_PW",
        "AZURE_FEDERATED_TOKEN_FILE": "/var/run/token",
        "PWD": "/work",
        "PATH": "/usr/bin",
        "JAVA_HOME": "/usr/lib/jvm",
        "PYSPARK_PYTHON": "/usr/bin/python3",
        "SPARK_HOME": "/opt/spark",
        "DATA_MESH_HOME": "/data",
    }
    assert secret_env_for_jvm(settings_secret_env(settings), environ) == sorted(
        [
            "MY_DDZ_PW",
            "MY_LAKE",
            "DATA_MESH_DDZ_USER",
            "DATA_MESH_ADLS_KEY",
            "AZURE_CLIENT_SECRET",
            "SOME_API_KEY",
            "GITHUB_TOKEN",
            "WEBHOOK",
            "PAYMENTS_DB",
        ]
    )
