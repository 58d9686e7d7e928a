"""How long the DDZ writer waits for the database and for Spark."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DdzTimeouts:
    """How long the writer waits for the DDZ, in seconds: nothing it does can wait forever.

    `login`: opening a connection; `lock`: a statement waiting for a lock another session
    holds; `statement`: one statement or one JDBC batch; `claim`: a load waiting for another
    load of the same table to finish (0: fail at once); `stall`: a chunk's Spark job that has
    not finished after this long is cancelled (an executor that stopped making progress).
    """

    login: int = 30
    lock: int = 60
    statement: int = 3600
    claim: int = 600
    stall: int = 1800

    def __post_init__(self) -> None:
        for name in ("login", "lock", "statement", "stall"):
            if getattr(self, name) < 1:
                raise ValueError(f"the DDZ {name} timeout must be at least 1 second")
        if self.claim < 0:
            raise ValueError("the DDZ claim timeout must be 0 (fail at once) or more seconds")
