"""The tollgate CLI run in-process against a test's servers, as the integration tests
drive it."""
from __future__ import annotations

from provisioning import cli


class Tollgate:
    """Runs `tollgate ...` in-process against the test's servers and keeps its output."""

    def __init__(self, dsn: str, redis_url: str, capsys):
        self.dsn, self.redis_url, self.capsys = dsn, redis_url, capsys
        self.out = self.err = ""

    def __call__(self, *argv: str) -> int:
        self.capsys.readouterr()
        code = cli.main(["--dsn", self.dsn, "--redis", self.redis_url, *argv])
        captured = self.capsys.readouterr()
        self.out, self.err = captured.out, captured.err
        return code
