"""Fixtures for the scaling tests: a MariaDB primary/replica pair of their own (session
scoped, stopped and removed at the end), and a scratch Ephemera database on it per test.

Without ``mariadbd`` the tests that need the pair skip with the reason; with
``EPHEMERA_REQUIRE_MYSQL=1`` (CI) they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.scaling.servers import MariaDBPair, missing_tools, start_pair

REQUIRE_MYSQL = os.environ.get("EPHEMERA_REQUIRE_MYSQL") == "1"


@pytest.fixture(scope="session")
def mariadb_pair() -> Iterator[MariaDBPair]:
    """A binlog-enabled MariaDB primary and a replica of it, for the whole session."""
    reason = missing_tools()
    if reason is not None:
        message = f"cannot start a MariaDB primary/replica pair: {reason}"
        if REQUIRE_MYSQL:
            pytest.fail(message)
        pytest.skip(message)
    pair = start_pair()
    try:
        yield pair
    finally:
        pair.stop()


@pytest.fixture
def pair_db(mariadb_pair: MariaDBPair) -> Iterator[str]:
    """A fresh database on the pair (created on the primary, replicated); dropped after."""
    name = f"eph_{uuid.uuid4().hex[:10]}"
    mariadb_pair.create_database(name)
    try:
        yield name
    finally:
        mariadb_pair.replicate()  # a test may have stopped replication
        mariadb_pair.drop_database(name)
