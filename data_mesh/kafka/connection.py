"""A Kafka DataSource's connection: brokers and credentials by reference, never by value.

`kafka://broker1:9092,broker2:9092?security_protocol=SASL_SSL&sasl_mechanism=PLAIN`
`&username=env:KAFKA_USER&password=keyvault://vault/kafka-password` (Azure Event Hubs' Kafka
endpoint: username `$ConnectionString`, the password a reference to the connection string).
The references are resolved when a producer is made, in the step, so no value is in a row, a
log or the UI.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from data_mesh.catalog.errors import MetadataError
from data_mesh.settings.secrets import parse_reference, resolve_secret

# Kafka's own rule for topic names (kafka.common.internals.Topic).
TOPIC_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,249}")
# Options of the URL passed to the client as they are (librdkafka's names, with _ for .).
PLAIN_OPTIONS = {"security_protocol", "sasl_mechanism", "ssl_ca_location", "client_id"}
SECRET_OPTIONS = {"username": "sasl.username", "password": "sasl.password"}
_BROKER = re.compile(r"[A-Za-z0-9.-]+:[0-9]{1,5}")


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap: str
    options: Mapping[str, str] = field(default_factory=dict)
    # librdkafka setting -> secret reference (env:NAME, keyvault://vault/secret).
    secrets: Mapping[str, str] = field(default_factory=dict)

    def client_config(self, resolve: Callable[[str], str] = resolve_secret) -> dict[str, Any]:
        """The client settings, with secret references resolved now."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap, **self.options}
        config.update({name: resolve(ref) for name, ref in self.secrets.items()})
        return config


def parse_kafka_connection(text: str, where: str, reference: str | None = None) -> KafkaConnection:
    """A `kafka://` connection string; errors name `where` and the part that is wrong. When
    `text` is the value of a secret `reference`, errors name the reference and quote nothing
    of the value (it may be a connection string with a key in it)."""
    parts = urlsplit(text.strip())
    shown = (lambda part: f"(the value of {reference})") if reference else repr
    if parts.scheme != "kafka" or not parts.netloc:
        raise MetadataError(
            f"{where}: a kafka ConnectionString is kafka://host:port[,host:port...][?options], "
            f"got {shown(text.split('?')[0])}"
        )
    if "@" in parts.netloc:
        raise MetadataError(
            f"{where}: credentials go in the options username= and password= as references, "
            "never before the brokers"
        )
    brokers = parts.netloc.split(",")
    bad = [b for b in brokers if not _BROKER.fullmatch(b)]
    if bad:
        raise MetadataError(f"{where}: broker {shown(bad[0])} is not host:port")
    options: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in SECRET_OPTIONS:
            if parse_reference(value) is None:
                raise MetadataError(
                    f"{where}: option {name!r} must be a reference (env:NAME or "
                    "keyvault://vault/secret), never a value"
                )
            secrets[SECRET_OPTIONS[name]] = value
        elif name in PLAIN_OPTIONS:
            options[name.replace("_", ".")] = value
        else:
            known = ", ".join(sorted(PLAIN_OPTIONS | set(SECRET_OPTIONS)))
            raise MetadataError(f"{where}: unknown option {shown(name)} (known: {known})")
    return KafkaConnection(",".join(brokers), options, secrets)


def check_topic_name(topic: str, where: str) -> str:
    if not TOPIC_PATTERN.fullmatch(topic) or topic in (".", ".."):
        raise MetadataError(
            f"{where}: topic {topic!r} is not a valid Kafka topic name (letters, digits, '.', "
            "'_' and '-', at most 249 characters)"
        )
    return topic
