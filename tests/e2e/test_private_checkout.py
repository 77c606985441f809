"""`make run` from a checkout in root's 0700 home (issue 6 item 6).

The postgres user cannot reach a folder inside such a checkout: the stack still comes up,
its PostgreSQL cluster kept where its owner can reach it, and Ctrl-C stops all of it. When
no such place can be made, `make run` says so in one line and exits non-zero.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from ivr import prompts
from tests.servers import LOG_ROOT, PostgresServer, free_port, kill_group, log_dir, private_loopback
from tests.stack import sip_ping
from tollgate import config, stack

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL over "
                                 "to the postgres user")]

COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "var", "build", "*.egg-info",
                                     "__pycache__", ".pytest_cache")


def _private_dir(name: str) -> Path:
    """A folder like root's home: 0700, so the postgres user cannot traverse it."""
    home = log_dir(name)
    os.chmod(home, 0o700)
    return home


def _checkout(home: Path) -> Path:
    """The working tree (uncommitted work included) as a user's checkout in `home`."""
    tree = home / "tollgate"
    shutil.copytree(stack.ROOT, tree, ignore=COPY_IGNORE)
    prompts.build(LOG_ROOT / "prompts")
    shutil.copytree(LOG_ROOT / "prompts", tree / "var" / "prompts")
    return tree


def _run_env(tree: Path) -> dict[str, str]:
    """`make run`'s environment in `tree`: its own code first, free ports, a light stack."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TOLLGATE_VAR_DIR", "TOLLGATE_CONFIG")}
    env["PYTHONPATH"] = os.pathsep.join([str(tree), sysconfig.get_paths()["purelib"]])
    env["TOLLGATE_INTERNAL_SECRET"] = uuid.uuid4().hex
    for name in ("sip_port", "ivr_sip_port", "rtpengine_ng_port", "dtmf_events_port",
                 "redis_port", "pg_port", "metrics_port"):
        env["TOLLGATE_" + name.upper()] = str(free_port())
    env["TOLLGATE_PSTN_GATEWAY"] = f"127.0.0.1:{free_port()}"
    env["TOLLGATE_RTPENGINE_ADDRESS"] = private_loopback()
    env.update(TOLLGATE_IVR_WORKERS="1", TOLLGATE_SIP_CHILDREN="2")
    return env


def _pg_accepts(port: int) -> str:
    """The running cluster's data directory, or '' while nothing accepts a connection."""
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                             connect_timeout=2) as conn:
            return conn.execute("SHOW data_directory").fetchone()[0]
    except psycopg.OperationalError:
        return ""


def _wait(check, proc: subprocess.Popen, out: Path, what: str, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if proc.poll() is not None:
            raise AssertionError(f"tollgate.run exited {proc.returncode} before {what}:\n"
                                 f"{out.read_text()[-3000:]}")
        time.sleep(0.3)
    raise AssertionError(f"no {what} after {timeout}s:\n{out.read_text()[-3000:]}")


def _pgrep(pattern: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True,
                          text=True).stdout.split()


def test_make_run_from_a_checkout_in_a_private_home_dir():
    home = _private_dir("private-checkout")
    tree = _checkout(home)
    env = _run_env(tree)
    sip_port, pg_port = int(env["TOLLGATE_SIP_PORT"]), int(env["TOLLGATE_PG_PORT"])
    out = home / "run.out"
    print(f"make run output: {out}, logs: {tree / 'var' / 'log'}")
    proc = subprocess.Popen([sys.executable, "-m", "tollgate.run"], env=env, cwd=tree,
                            stdout=out.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    data = ""
    try:
        _wait(lambda: sip_ping("127.0.0.1", sip_port).startswith("SIP/2.0 200"), proc, out,
              "OPTIONS answered by Kamailio")
        data = _wait(lambda: _pg_accepts(pg_port), proc, out, "PostgreSQL connection")
        assert not Path(data).resolve().is_relative_to(home.resolve())
        second = subprocess.run([sys.executable, "-m", "tollgate.run"], env=env, cwd=tree,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode != 0 and "already running" in second.stderr, second.stderr

        os.kill(proc.pid, signal.SIGINT)  # to the launcher alone, as Ctrl-C in its terminal
        assert proc.wait(90) == 0, out.read_text()[-3000:]
        assert "Traceback" not in out.read_text()
        assert sip_ping("127.0.0.1", sip_port) == ""
        assert _pg_accepts(pg_port) == ""
        assert _pgrep(str(tree)) == []
        assert _pgrep(data) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                kill_group(proc)
        # a cluster kept outside the checkout is this test's to remove
        if data and not Path(data).resolve().is_relative_to(home.resolve()):
            shutil.rmtree(Path(data).parent, ignore_errors=True)


def test_where_the_cluster_lives(monkeypatch):
    """var/pg when the postgres user reaches var/; else one folder per checkout outside it."""
    open_home = log_dir("open-pg")
    os.chmod(open_home, 0o755)
    reachable = config.load(var_dir=str(open_home / "var"))
    reachable.var_path.mkdir()
    assert stack.postgres_dir(reachable) == reachable.var_path / "pg"

    private = [config.load(var_dir=str(_private_dir("private-pg") / "tollgate" / "var"))
               for _ in range(2)]
    for s in private:
        s.var_path.mkdir(parents=True)
    places = [stack.postgres_dir(s) for s in private]
    assert places[0] != places[1]
    assert places[0] == stack.postgres_dir(private[0])
    for place, s in zip(places, private):
        assert not place.is_relative_to(s.var_path.parent.parent)
        assert stack.postgres_program(s).command[2] == str(place / "data")
    # not root: PostgreSQL runs as the user who owns the checkout
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert stack.postgres_dir(private[0]) == private[0].var_path / "pg"


def test_no_place_for_the_cluster_is_one_line_and_a_non_zero_exit(tmp_path):
    """The folder for clusters cannot be made (a file sits where it goes)."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    home = _private_dir("private-noplace")
    env = {**os.environ, "TOLLGATE_VAR_DIR": str(home / "tollgate" / "var"),
           "PYTHONPATH": stack.python_path(), "TOLLGATE_INTERNAL_SECRET": uuid.uuid4().hex,
           "TOLLGATE_PG_PORT": str(free_port())}
    code = ("import sys; from pathlib import Path; from tollgate import run, stack; "
            f"stack.PG_STATE = Path({str(blocker / 'tollgate')!r}); sys.exit(run.main())")
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=stack.ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tollgate: ") and "PostgreSQL" in lines[0], lines[0]


@pytest.mark.integration
def test_test_clusters_start_when_the_test_logs_are_private(monkeypatch):
    """TOLLGATE_TEST_LOGS under a 0700 folder: the test helper's cluster still starts."""
    monkeypatch.setattr("tests.servers.LOG_ROOT", _private_dir("private-logs") / "logs")
    server = PostgresServer().start()
    try:
        assert _pg_accepts(server.port)
    finally:
        server.discard()
