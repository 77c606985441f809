"""`make run`: the whole stack with the demo tenant, supervised, in the foreground.

Redis, PostgreSQL and rtpengine start first; then the schema is migrated, the demo tenant
imported and Redis loaded; then the xDR writer, the IVR, Kamailio, the metrics endpoint
and a demo PSTN gateway (a sipp UAS). Ctrl-C stops everything that was started.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from ivr import prompts
from tollgate import config, stack
from tollgate.config import Settings
from tollgate.net import wait_tcp

PHASE_ONE = ("redis", "postgres", "rtpengine")
DEMO = stack.ROOT / "demo" / "smart-calls.yaml"


def main() -> int:
    settings = config.load()
    var = settings.var_path
    var.mkdir(parents=True, exist_ok=True)
    lock = _take_lock(var / "run.lock")
    if lock is None:
        print(f"tollgate: already running from {var} (pid {_lock_owner(var)}); "
              "stop it with Ctrl-C in its terminal", file=sys.stderr)
        return 1
    stack.prepare(settings)
    # the IVR workers would each synthesize missing prompts at start (840 files, seconds):
    # once here, before anything answers calls
    prompts.build(var / "prompts")
    try:
        _init_postgres(settings)
    except RuntimeError as exc:
        print(f"tollgate: {exc}", file=sys.stderr)
        return 1
    conf = _write_supervisord_conf(settings)
    supervisor = subprocess.Popen(["supervisord", "-n", "-c", str(conf)], start_new_session=True)
    # SIGTERM and Ctrl-C both unwind to the `finally` below, even when a parent shell
    # started us with SIGINT ignored (stopping from inside the handler would deadlock
    # on the wait the main code is in)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        _wait_ports(settings, supervisor)
        _provision(settings)
        ivrs = [f"ivr-{i}" for i in range(settings.ivr_workers)]
        _ctl(conf, "start", "xdr-writer", *ivrs, "kamailio", "metrics", "demo-gateway")
        _banner(settings)
        return supervisor.wait()
    except KeyboardInterrupt:
        print("\ntollgate: stopping ...", file=sys.stderr)
        return 0
    except RuntimeError as exc:
        print(f"tollgate: {exc}; logs are in {var / 'log'}", file=sys.stderr)
        return 1
    finally:
        _stop(supervisor)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _take_lock(path: Path) -> TextIO | None:
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def _lock_owner(var: Path) -> str:
    try:
        return (var / "run.lock").read_text().strip() or "?"
    except OSError:
        return "?"


def _init_postgres(s: Settings) -> None:
    """A cluster of our own in stack.postgres_dir, owned by the postgres user when we are
    root. RuntimeError, in words for the operator, when it cannot be made there."""
    pg = stack.postgres_dir(s)
    data = pg / "data"
    if (data / "PG_VERSION").exists():
        return
    why = "" if pg == s.var_path / "pg" else f" (the postgres user cannot reach {s.var_path})"
    as_owner: list[str] = []
    try:
        _make_folders(pg)
        if os.geteuid() == 0:
            shutil.chown(pg, "postgres", "postgres")
            as_owner = ["runuser", "-u", "postgres", "--"]
            _link_var_pg(s, pg)
    except OSError as exc:
        raise RuntimeError(f"cannot make {pg} for PostgreSQL{why}: {exc.strerror}") from None
    if as_owner and not stack.postgres_can_reach(pg):
        raise RuntimeError(f"the postgres user cannot reach {pg}: let it traverse the folders "
                           "above, or set var_dir elsewhere")
    initdb = subprocess.run([*as_owner, str(stack.PG_BIN / "initdb"), "-D", str(data),
                             "-A", "trust", "-U", "postgres", "-E", "UTF8"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if initdb.returncode != 0:
        lines = initdb.stderr.strip().splitlines() or ["no message"]
        reason = next((line for line in lines if "error" in line), lines[-1])
        raise RuntimeError(f"initdb of {data} failed: {reason}")


def _make_folders(folder: Path) -> None:
    """mkdir -p whose new folders others may traverse whatever our umask (the postgres user
    has to); folders that exist are left as they are."""
    missing = [f for f in (folder, *folder.parents) if not f.exists()]
    for f in reversed(missing):
        f.mkdir()
        os.chmod(f, 0o755)


def _link_var_pg(s: Settings, pg: Path) -> None:
    """var/pg points to a cluster kept outside var/: the place shows, and stays chosen."""
    link = s.var_path / "pg"
    if link == pg or link.is_symlink():
        return
    if link.is_dir():
        try:
            link.rmdir()  # the empty folder a start that failed to reach it left
        except OSError:
            return
    link.symlink_to(pg)


def _write_supervisord_conf(s: Settings) -> Path:
    run = s.var_path / "run"
    logs = s.var_path / "log"
    sections = [
        "[supervisord]", f"logfile={logs / 'supervisord.log'}",
        f"pidfile={run / 'supervisord.pid'}", f"childlogdir={logs}", "",
        "[unix_http_server]", f"file={run / 'supervisor.sock'}", "chmod=0700", "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        "[supervisorctl]", f"serverurl=unix://{run / 'supervisor.sock'}", "",
    ]
    programs = stack.programs(s) + [_demo_gateway(s)]
    for prog in programs:
        env = ",".join(f'{k}="{v}"' for k, v in prog.env.items())
        sections += [
            f"[program:{prog.name}]",
            "command=" + " ".join(_quote(a) for a in prog.command),
            f"directory={prog.cwd}",
            f"autostart={'true' if prog.name in PHASE_ONE else 'false'}",
            "autorestart=true", "startsecs=1", "stopwaitsecs=15", "stopasgroup=true",
            "killasgroup=true", "redirect_stderr=true",
            f"stdout_logfile={logs / (prog.name + '.log')}",
            "stdout_logfile_maxbytes=20MB",
        ]
        if prog.user:
            sections.append(f"user={prog.user}")
        if env:
            sections.append(f"environment={env}")
        sections.append("")
    conf = run / "supervisord.conf"
    conf.write_text("\n".join(sections))
    return conf


def _demo_gateway(s: Settings) -> stack.Program:
    """A sipp UAS playing the PSTN: answers every call the stack sends out."""
    host, port = s.pstn_gateway.split(":")
    scenario = stack.ROOT / "demo" / "gateway-uas.xml"
    return stack.Program("demo-gateway", ["sipp", "-sf", str(scenario), "-i", host, "-p", port,
                                          "-nostdin", "-aa", "-trace_err"],
                         s.var_path / "log")


def _quote(arg: str) -> str:
    return f'"{arg}"' if any(c in arg for c in " ,;") else arg


def _wait_ports(s: Settings, supervisor: subprocess.Popen[bytes], timeout: float = 60) -> None:
    for name, port in (("Redis", s.redis_port), ("PostgreSQL", s.pg_port)):
        if not wait_tcp(s.redis_host if name == "Redis" else s.pg_host, port, timeout,
                        alive=lambda: supervisor.poll() is None):
            raise RuntimeError(f"{name} did not start on port {port}")


def _provision(s: Settings) -> None:
    """Role and database, migrations, the demo tenant once, then Redis from PostgreSQL."""
    psql = ["psql", "-h", s.pg_host, "-p", str(s.pg_port), "-U", "postgres", "-d", "postgres",
            "-tAq", "-v", "ON_ERROR_STOP=1"]
    query = f"SELECT 1 FROM pg_database WHERE datname='{s.pg_database}'"
    exists = subprocess.run([*psql, "-c", query],
                            capture_output=True, text=True, check=True).stdout.strip()
    if not exists:
        subprocess.run([*psql, "-c", f"CREATE ROLE {s.pg_user} LOGIN SUPERUSER"], check=False,
                       capture_output=True)
        subprocess.run([*psql, "-c", f"CREATE DATABASE {s.pg_database} OWNER {s.pg_user}"],
                       check=True)
    env = {**os.environ, **stack.environment(s)}
    cli = [sys.executable, "-m", "provisioning.cli"]
    subprocess.run([*cli, "migrate"], check=True, env=env)
    marker = s.var_path / ".demo-loaded"
    if not exists or not marker.exists():  # a new cluster has no demo, whatever the marker says
        subprocess.run([*cli, "import", str(DEMO)], check=True, env=env)
        marker.write_text(time.strftime("%Y-%m-%d %H:%M:%S"))
    subprocess.run([*cli, "resync"], check=True, env=env)


def _ctl(conf: Path, *args: str) -> None:
    subprocess.run(["supervisorctl", "-c", str(conf), *args], check=True, stdout=subprocess.DEVNULL)


def _banner(s: Settings) -> None:
    ivr_ports = f"{s.ivr_sip_port}-{s.ivr_sip_port + s.ivr_workers - 1}"
    print(f"""
tollgate is running (Ctrl-C stops everything).
  SIP (Kamailio)      udp/tcp {s.sip_address}:{s.sip_port}   domain {s.sip_domain}
  IVR media server    udp {s.ivr_address}:{ivr_ports} ({s.ivr_workers} workers)
  PSTN gateway (demo) udp {s.pstn_gateway}  (sipp UAS answering every call)
  Redis {s.redis_host}:{s.redis_port}   PostgreSQL {s.pg_host}:{s.pg_port}/{s.pg_database}
  Metrics             http://127.0.0.1:{s.metrics_port}/metrics
  Logs                {s.var_path / 'log'}

Register a softphone: server {s.sip_address}:{s.sip_port}, user 17785551210 (Mark),
password from `tollgate account show 17785551210`. Dial 12125550123 and enter 4545
(Rachel's code) when the IVR asks; `tollgate xdr list --account 17785551209` shows it.
""", flush=True)


def _stop(supervisor: subprocess.Popen[bytes]) -> None:
    if supervisor.poll() is None:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(supervisor.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
