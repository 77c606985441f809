"""A whole tollgate stack for end-to-end tests: the same commands `make run` supervises,
started on free ports in a private folder, with the demo tenant provisioned.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

from ivr import prompts
from tests.servers import (
    LOG_ROOT,
    PostgresServer,
    RedisServer,
    free_port,
    kill_group,
    link_prompts,
    log_dir,
    private_loopback,
)
from tollgate import config, stack
from tollgate.config import Settings

DEMO = stack.ROOT / "demo" / "smart-calls.yaml"


def sip_ping(host: str, port: int, timeout: float = 0.5, source: str = "127.0.0.1") -> str:
    """Send one OPTIONS over UDP; the raw reply text, or '' when none came."""
    call_id = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        lport = s.getsockname()[1]
        msg = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {source}:{lport};branch=z9hG4bK{call_id[:10]}\r\n"
               f"From: <sip:ping@127.0.0.1>;tag={call_id[:8]}\r\nTo: <sip:{host}:{port}>\r\n"
               f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
               "Content-Length: 0\r\n\r\n")
        s.settimeout(timeout)
        s.sendto(msg.encode(), (host, port))
        try:
            return s.recv(65535).decode(errors="replace")
        except OSError:
            return ""


def wait_sip(host: str, port: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sip_ping(host, port).startswith("SIP/2.0 200"):
            return True
        time.sleep(0.2)
    return False


class Stack:
    """Redis, PostgreSQL, rtpengine, the xDR writer, the IVR and Kamailio on free ports."""

    def __init__(self, with_gateway: bool = True, **overrides):
        self.dir = log_dir("stack")
        gateway_port = free_port()
        self.settings: Settings = config.load(
            var_dir=str(self.dir / "var"), sip_port=free_port(),
            ivr_sip_port=_free_run(4), ivr_media_port=_free_range(20000, 21000),
            rtpengine_address=private_loopback(),
            rtpengine_ng_port=free_port(), dtmf_events_port=free_port(),
            rtp_port_min=(base := _free_range(25000, 28900)), rtp_port_max=base + 999,
            redis_port=free_port(), pg_port=free_port(), metrics_port=free_port(),
            pstn_gateway=f"127.0.0.1:{gateway_port}", internal_secret=uuid.uuid4().hex,
            # info: each offer/answer and confirmed peer in the diagnostics of a silent call
            **{"ivr_workers": 2, "rtpengine_log_level": 6, **overrides})
        self.gateway_port = gateway_port
        self.with_gateway = with_gateway
        self.redis = RedisServer(port=self.settings.redis_port, appendonly=True)
        self.pg = PostgresServer(port=self.settings.pg_port)
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **stack.environment(self.settings),
                "TOLLGATE_PG_USER": self.pg.user, "TOLLGATE_PG_DATABASE": self.pg.database}

    def start(self) -> "Stack":
        stack.prepare(self.settings)
        # prompts are synthesized once per test run, then copied into each stack
        prompts.build(LOG_ROOT / "prompts")
        link_prompts(self.settings.var_path / "prompts")
        self.redis.start()
        self.pg.start()
        self.cli("migrate")
        self.cli("import", str(DEMO))
        self.cli("resync")
        for attempt in range(3):
            self._start_programs()
            if wait_sip(self.settings.sip_address, self.settings.sip_port):
                break
            if attempt == 2 or "Address already in use" not in self.log("kamailio"):
                self.stop()  # the fixture never yields: nothing else would stop them
                raise RuntimeError(f"Kamailio did not answer OPTIONS; logs in {self.dir}")
            # another process took the SIP port between free_port() and Kamailio's bind:
            # everything that knows the port starts again on a fresh one
            self._stop_programs()
            self.settings = replace(self.settings, sip_port=free_port())
            stack.prepare(self.settings)
        if self.with_gateway:
            from tests import sipp
            self.procs["gateway"] = sipp.uas(self.gateway_port, self.dir)
        return self

    def _start_programs(self) -> None:
        for prog in stack.programs(self.settings):
            if prog.name not in ("redis", "postgres"):
                self.start_program(prog)

    def _stop_programs(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop_program(name)

    def start_program(self, prog: stack.Program) -> subprocess.Popen:
        env = {**self.env, **prog.env}
        log = open(self.dir / f"{prog.name}.log", "ab")
        proc = subprocess.Popen(prog.command, cwd=prog.cwd, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[prog.name] = proc
        return proc

    def restart(self, name: str) -> None:
        """Stop one program and start it again with the same command; an IVR worker is
        back once it answers SIP on its port."""
        self.stop_program(name)
        prog = next(p for p in stack.programs(self.settings) if p.name == name)
        self.start_program(prog)
        if name.startswith("ivr-"):
            s = self.settings
            port = s.ivr_sip_port + int(name.split("-", 1)[1])
            if not wait_sip(s.ivr_address, port):
                raise RuntimeError(f"{name} did not answer SIP on {port} after its restart")

    def stop_program(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            kill_group(proc)

    def kill_program(self, name: str) -> None:
        """SIGKILL one program and everything it forked: a crash, not a shutdown."""
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The provisioning CLI as an operator runs it, against this stack."""
        proc = subprocess.run([sys.executable, "-m", "provisioning.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise RuntimeError(f"tollgate {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop_program(name)
        self.redis.stop()
        self.pg.discard()

    def log(self, name: str) -> str:
        """A program's log; "ivr" joins the logs of every IVR worker."""
        paths = [self.dir / f"{name}.log"] + sorted(self.dir.glob(f"{name}-*.log"))
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())

    @property
    def sip_target(self) -> str:
        return f"{self.settings.sip_address}:{self.settings.sip_port}"


def _free_run(count: int) -> int:
    """The first of `count` consecutive free UDP ports (IVR workers)."""
    while True:
        first = free_port(socket.SOCK_DGRAM)
        if all(_udp_free(first + i) for i in range(1, count)):
            return first


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_range(low: int, high: int) -> int:
    """A random even port in [low, high): media ranges below the ephemeral ports, IVR media
    under 25000 and rtpengine above, so no two share a port (UDP SO_REUSEADDR would let
    one steal the other's packets)."""
    import random
    # not the module's generator: pytest-randomly seeds it alike before every test, and
    # every stack of a run would get the same ports
    return random.SystemRandom().randrange(low, high, 2)


__all__ = ["Stack", "sip_ping", "wait_sip", "Path"]
