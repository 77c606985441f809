"""Fixtures of the integration tests that several modules share."""
from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.migrate import migrate
from tests.cli import Tollgate

DEMO = Path(__file__).resolve().parents[2] / "demo" / "smart-calls.yaml"


@pytest.fixture
def demo_cli(pg_dsn, redis_server, redis_client, capsys) -> Tollgate:
    """`tollgate ...` on a fresh database holding the demo tenant."""
    migrate(pg_dsn)
    tool = Tollgate(pg_dsn, redis_server.url(), capsys)
    assert tool("import", str(DEMO)) == 0, tool.err
    return tool
