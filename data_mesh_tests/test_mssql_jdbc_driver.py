"""The real mssql-jdbc driver, loaded in the test Spark session's JVM, accepts every connection
property the SQL Server path sets: the settings the dialect appends to the JDBC URL and the JDBC
properties the writer passes (user/password, or an Entra ID accessToken).

mssql-jdbc ignores a property it does not know (it only logs it), so a misspelt setting would
silently do nothing; this is where such a name fails. No SQL Server is needed: the driver
answers from its own tables (`getPropertyInfo`), without connecting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from py4j.java_gateway import get_field

from data_mesh.ddz.dialects import SqlServerDialect
from data_mesh.settings.model import DEFAULT_JDBC_JARS, MSSQL_JDBC_JAR
from data_mesh_tests.conftest import REPO

pytestmark = pytest.mark.slow

HOST_URL = "jdbc:sqlserver://localhost:1433"
MADE_UP = "notARealMssqlSetting"
# A value no property has by default: a URL setting the driver maps onto a property (its own
# name or a synonym such as `database` for `databaseName`) shows up as that property's value.
MARKER = "dmMarker7f3a"


def _base_urls() -> list[str]:
    """A minimal URL and the DDZ URLs the environments deploy (their Helm values)."""
    urls = [f"{HOST_URL};databaseName=ddz"]
    for values in sorted((REPO / "deploy" / "helm").glob("values-*.yaml")):
        document = yaml.safe_load(values.read_text(encoding="utf-8"))
        for deployment in document["dagster-user-deployments"]["deployments"]:
            url = deployment.get("env", {}).get("DATA_MESH_DDZ_JDBC_URL", "")
            if url.startswith("jdbc:sqlserver:"):
                urls.append(url)
    return urls


def url_settings(url: str) -> dict[str, str]:
    """The `;key=value` settings after the host part of a `jdbc:sqlserver://` URL."""
    assert url.startswith("jdbc:sqlserver://"), url
    _host, *settings = url.removeprefix("jdbc:sqlserver://").split(";")
    pairs = {}
    for setting in settings:
        if not setting:
            continue
        key, equals, value = setting.partition("=")
        assert equals and key, f"{url}: {setting!r} is not key=value"
        pairs[key.strip()] = value.strip()
    return pairs


class MssqlDriver:
    """`com.microsoft.sqlserver.jdbc.SQLServerDriver` as registered in Spark's JVM."""

    def __init__(self, spark: Any) -> None:
        self._jvm = spark._jvm
        self._gateway = spark.sparkContext._gateway
        try:
            self.driver = self._jvm.java.sql.DriverManager.getDriver(HOST_URL)
        except Exception as error:
            extra = spark.sparkContext.getConf().get("spark.driver.extraClassPath", "")
            pytest.fail(
                f"no JDBC driver for {HOST_URL} in the Spark session (spark.driver.extraClassPath"
                f"={extra!r}): {str(error).splitlines()[0]}"
            )
        self.listed = {name.lower(): name for name in self.properties(HOST_URL)}

    def properties(self, url: str) -> dict[str, str]:
        """What `getPropertyInfo` reports for `url`: every property the driver knows, with
        the value the URL gives it (or its default)."""
        infos = self.driver.getPropertyInfo(url, self._jvm.java.util.Properties())
        return {str(get_field(i, "name")): str(get_field(i, "value")) for i in infos}

    def url_property(self, key: str) -> str | None:
        """The property a URL setting `key` sets (its own name or the one a synonym stands
        for), or None if the driver does not know it."""
        if key.lower() in self.listed:
            return self.listed[key.lower()]
        reported = self.properties(f"{HOST_URL};{key}={MARKER}")
        hits = [name for name, value in reported.items() if value == MARKER]
        return hits[0] if len(hits) == 1 else None

    def connection_property(self, key: str) -> str | None:
        """The property a JDBC `Properties` entry `key` sets, or None if the driver does not
        know it. `getPropertyInfo` leaves out the names accepted only as properties, never in
        the URL (accessToken, gsscredential, accessTokenCallback): those are looked up with
        the driver's own `getPropertyOnlyName`, which `connect` applies to the properties."""
        if key.lower() in self.listed:
            return self.listed[key.lower()]
        jvm, gateway = self._jvm, self._gateway
        types = gateway.new_array(jvm.java.lang.Class, 2)
        types[0] = jvm.java.lang.Class.forName("java.lang.String")
        types[1] = jvm.java.lang.Class.forName("java.util.logging.Logger")
        lookup = self.driver.getClass().getDeclaredMethod("getPropertyOnlyName", types)
        lookup.setAccessible(True)
        arguments = gateway.new_array(jvm.java.lang.Object, 2)
        arguments[0] = key
        arguments[1] = jvm.java.util.logging.Logger.getLogger("data_mesh_tests")
        found = lookup.invoke(None, arguments)
        return None if found is None else str(found)


@pytest.fixture(scope="module")
def mssql(spark: Any) -> Iterator[MssqlDriver]:
    if not Path(MSSQL_JDBC_JAR).is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{MSSQL_JDBC_JAR} is missing: run scripts/setup.sh")
        pytest.skip(f"mssql-jdbc is not installed ({MSSQL_JDBC_JAR}): run scripts/setup.sh")
    driver = MssqlDriver(spark)
    name = driver.driver.getClass().getName()
    assert name == SqlServerDialect.driver_class, f"{HOST_URL} is served by {name}"
    yield driver


def test_setup_fetches_the_jar_the_settings_name() -> None:
    """scripts/setup.sh pins the version; the settings name the file it writes."""
    setup = (REPO / "scripts" / "setup.sh").read_text(encoding="utf-8")
    version = re.search(r"^MSSQL_JDBC_VERSION=(\S+)$", setup, flags=re.MULTILINE)
    assert version, "scripts/setup.sh pins no MSSQL_JDBC_VERSION"
    assert Path(MSSQL_JDBC_JAR) == REPO / ".tools" / "jars" / f"mssql-jdbc-{version[1]}.jar"
    assert MSSQL_JDBC_JAR in DEFAULT_JDBC_JARS


def test_the_driver_rejects_a_made_up_name(mssql: MssqlDriver) -> None:
    # The checks below must be able to fail.
    assert len(mssql.listed) > 50, sorted(mssql.listed)
    assert mssql.url_property(MADE_UP) is None
    assert mssql.connection_property(MADE_UP) is None
    assert mssql.url_property("databaseName") == "databaseName"
    assert mssql.url_property("DATABASE") == "databaseName"  # a synonym, any case
    assert mssql.connection_property("ACCESSTOKEN") == "accessToken"


@pytest.mark.parametrize("base_url", _base_urls())
def test_dialect_url_settings_are_driver_properties(mssql: MssqlDriver, base_url: str) -> None:
    dialect = SqlServerDialect()
    url = dialect.jdbc_url(base_url, table_lock=True)
    settings = url_settings(url)
    # What the dialect appends is in the parsed settings (so new ones are checked too).
    appended = {*dialect.url_settings, dialect.table_lock_setting}
    assert appended <= set(settings), f"{url}: {sorted(appended - set(settings))} not parsed"
    assert mssql.driver.acceptsURL(url), f"mssql-jdbc does not accept {url}"

    unknown = [key for key in settings if mssql.url_property(key) is None]
    assert not unknown, (
        f"mssql-jdbc {mssql.driver.getMajorVersion()}.{mssql.driver.getMinorVersion()} "
        f"does not know the URL setting(s) {unknown} of {url}; it would ignore them"
    )
    # Each setting reaches its property with its value: the URL parses as meant.
    reported = {name.lower(): value for name, value in mssql.properties(url).items()}
    wrong = {
        key: (value, reported[str(mssql.url_property(key)).lower()])
        for key, value in settings.items()
        if reported[str(mssql.url_property(key)).lower()].lower() != value.lower()
    }
    assert not wrong, f"{url}: setting -> (given, what the driver parsed): {wrong}"


def test_writer_connection_properties_are_driver_properties(
    mssql: MssqlDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data_mesh.resources import ddz_io_manager

    # The Azure token fetcher is not under test: a dummy token.
    monkeypatch.setattr(ddz_io_manager, "default_token", lambda: "dummy-token")
    monkeypatch.setenv("DM_TEST_MSSQL_USER", "loader")
    monkeypatch.setenv("DM_TEST_MSSQL_PASSWORD", "not-a-secret")
    url = f"{HOST_URL};databaseName=ddz"
    connections = {
        auth: ddz_io_manager.connection_from_env(
            url, "DM_TEST_MSSQL_USER", "DM_TEST_MSSQL_PASSWORD", azure_auth=auth
        )
        for auth in ("token", "sql", "")
    }
    # What every JDBC connection of the writer gets: credentials and timeouts.
    names = sorted({name for c in connections.values() for name in c.jdbc_properties})
    unknown = [name for name in names if mssql.connection_property(name) is None]
    assert not unknown, f"mssql-jdbc does not know the JDBC properties {unknown}"
    # The names came from the code paths meant (token; user and password from the env).
    timeouts = {"loginTimeout", "lockTimeout", "queryTimeout"}
    assert set(connections["token"].jdbc_properties) == {"accessToken", *timeouts}
    assert set(connections["sql"].jdbc_properties) == {"user", "password", *timeouts}
