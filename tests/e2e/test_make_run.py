"""`make run`'s stack (tollgate.run under supervisord), as an operator starts it.

It answers OPTIONS from the KEMI script; a password changed with the CLI is what the very
next REGISTER is checked against; a second start is refused; Ctrl-C stops everything.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest

from tests import sipp
from tests.servers import free_port, kill_group, log_dir, private_loopback
from tests.stack import sip_ping
from tollgate import stack

pytestmark = pytest.mark.e2e


def _launch():
    """Start `make run`'s launcher in a var folder of its own; (proc, env, var) once it
    says it is running."""
    var = log_dir("make-run") / "var"
    var.mkdir(mode=0o755)
    os.chmod(var.parent, 0o755)
    env = {**os.environ, "TOLLGATE_VAR_DIR": str(var), "PYTHONPATH": stack.python_path(),
           "TOLLGATE_INTERNAL_SECRET": uuid.uuid4().hex}
    for name in ("sip_port", "ivr_sip_port", "rtpengine_ng_port", "dtmf_events_port",
                 "redis_port", "pg_port", "metrics_port"):
        env["TOLLGATE_" + name.upper()] = str(free_port())
    env["TOLLGATE_PSTN_GATEWAY"] = f"127.0.0.1:{free_port()}"
    env["TOLLGATE_RTPENGINE_ADDRESS"] = private_loopback()  # its media ports are its own
    log = open(var.parent / "run.out", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "tollgate.run"], env=env, cwd=stack.ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_banner(proc, var.parent / "run.out")
    except BaseException:
        _stop(proc, var)
        raise
    return proc, env, var


def _stop(proc, var) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            kill_group(proc)
    print(f"make run logs: {var / 'log'}")


@pytest.fixture(scope="module")
def launches():
    """Every `make run` this module started, stopped at its end."""
    started: list[tuple] = []
    yield started
    for proc, _, var in started:
        _stop(proc, var)


@pytest.fixture
def running(launches):
    """A running `make run`: the module's, or a new one when a test before stopped it."""
    if not launches or launches[-1][0].poll() is not None:
        launches.append(_launch())
    return launches[-1]


def _wait_for_banner(proc, path, timeout=180):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "tollgate is running" in path.read_text():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"tollgate.run exited {proc.returncode}: {path.read_text()[-2000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"no banner after {timeout}s: {path.read_text()[-2000:]}")


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "provisioning.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def _target(env):
    return f"127.0.0.1:{env['TOLLGATE_SIP_PORT']}"


def test_options_is_answered_by_the_kemi_script(running):
    _, env, _ = running
    result = sipp.run("options", _target(env))
    assert result.ok, f"sipp logs: {result.logs}"


def test_a_password_changed_with_the_cli_is_used_by_the_next_register(running):
    _, env, _ = running
    target = _target(env)
    old = sipp.run("register", target, service="17785551210", user="17785551210",
                   password="mark-1210")
    assert old.ok, f"demo password refused, sipp logs: {old.logs}"
    changed = _cli(env, "account", "update", "17785551210", "--password", "n3w-secret")
    assert changed.returncode == 0, changed.stderr
    # no wait: the invalidation must already be in the workers' hands
    new = sipp.run("register", target, service="17785551210", user="17785551210",
                   password="n3w-secret")
    assert new.ok, f"new password refused, sipp logs: {new.logs}"
    stale = sipp.run("register", target, service="17785551210", user="17785551210",
                     password="mark-1210")
    assert not stale.ok


def test_a_second_start_is_refused_while_one_runs(running):
    _, env, _ = running
    second = subprocess.run([sys.executable, "-m", "tollgate.run"], env=env, cwd=stack.ROOT,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode != 0
    assert "already running" in second.stderr


def test_a_demo_toll_call_is_billed_to_the_pin_owner(running):
    """Jake's phone, Rachel's code 4545, the demo gateway: Rachel pays the toll leg.
    (Jake's, as another test changes Mark's password.)"""
    from tests.phones import SipStack
    _, env, _ = running
    sip = SipStack.get()
    jake = sip.phone("make-run-jake")
    try:
        assert jake.register(f"sip:{_target(env)}", "17785551211", "jake-1211",
                             "tollgate.local") == 200
        call = jake.call(f"sip:12125550123@{_target(env)}")
        sip.wait_for(lambda: call.confirmed, 15, "the IVR answering")
        asked = f"[{call.call_id}] PROMPT: playing enter_code"
        sip.wait_for(lambda: asked in _ivr_logs(running) and call.rx_packets() > 0, 15,
                     "the IVR asking for the code")
        call.send_dtmf("4545")
        sip.wait_for(lambda: "BRIDGE: audio flows both ways" in _ivr_logs(running), 15,
                     "the toll leg answered by the demo gateway")
        call.hangup_with()
        sip.wait_for(lambda: call.disconnected, 10, "hangup")
        sip.wait_for(lambda: '"leg": "toll"' in _cli(env, "--json", "xdr", "list", "--account",
                                                     "17785551209").stdout, 20, "Rachel's xDR")
    finally:
        sip.remove(jake)


def _ivr_logs(running) -> str:
    _, _, var = running
    return "".join(p.read_text(errors="replace") for p in (var / "log").glob("ivr-*.log"))


def test_ctrl_c_stops_everything_it_started(running):
    proc, env, _ = running
    os.kill(proc.pid, signal.SIGINT)  # to the launcher alone: it must stop the rest
    proc.wait(90)
    assert sip_ping("127.0.0.1", int(env["TOLLGATE_SIP_PORT"])) == ""
    leftovers = subprocess.run(["pgrep", "-f", env["TOLLGATE_VAR_DIR"]], capture_output=True,
                               text=True).stdout.split()
    assert leftovers == []
