"""`tollgate balance show`: what is available by billing.money's rule, live holds included."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from provisioning import cli
from provisioning.migrate import migrate
from tests.servers import free_port

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[2] / "demo" / "smart-calls.yaml"
RACHEL = "17785551209"   # credit, limit 50, of Smart Calls, Ltd. (customer 1, limit 100)


def show(capsys, pg_dsn: str, redis_url: str, account: str) -> dict:
    capsys.readouterr()
    argv = ["--dsn", pg_dsn, "--redis", redis_url, "--json", "balance", "show", account]
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def demo(pg_dsn, redis_server, redis_client, capsys):
    migrate(pg_dsn)
    assert cli.main(["--dsn", pg_dsn, "--redis", redis_server.url(), "import", str(DEMO)]) == 0
    return pg_dsn


def test_available_counts_what_live_calls_hold(demo, redis_server, redis_client, capsys):
    url = redis_server.url()
    assert cli.main(["--dsn", demo, "--redis", url, "balance", "adjust", RACHEL, "-90"]) == 0
    shown = show(capsys, demo, url, RACHEL)   # owes 90: 50 - 90 < 100 - 90
    assert (shown["balance"], shown["held"], shown["available"]) == ("90.00000", "0.00000",
                                                                      "-40.00000")
    assert cli.main(["--dsn", demo, "--redis", url, "balance", "adjust", RACHEL, "85"]) == 0
    live, expired = int(time.time() * 1000) + 60000, int(time.time() * 1000) - 1
    redis_client.hset("tg:resv:account:" + RACHEL, mapping={"c1": f"150000:{live}",
                                                            "old": f"900000:{expired}"})
    redis_client.hset("tg:resv:customer:1", mapping={"c1": f"150000:{live}",
                                                     "c2": f"9350000:{live}"})
    shown = show(capsys, demo, url, RACHEL)   # account: 50 - 5 - 1.5; customer: 100 - 5 - 95
    assert (shown["held"], shown["customer_held"], shown["available"]) == (
        "1.50000", "95.00000", "0.00000")
    assert "note" not in shown


def test_without_redis_available_says_it_ignores_holds(demo, capsys):
    shown = show(capsys, demo, f"redis://127.0.0.1:{free_port()}/0", RACHEL)
    assert (shown["held"], shown["available"]) == (None, "50.00000")
    assert "Redis unreachable" in shown["note"]
