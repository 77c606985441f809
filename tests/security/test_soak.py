"""A bounded soak through the real stack: authenticated short calls at SOAK_CPS for
SOAK_SECONDS from many good source addresses, out to a sipp gateway (toll-free and paid
numbers), while one source (127.0.0.2) keeps guessing a password at ~5 % of the rate.

What must hold afterwards: every good call was answered 200 and hung up cleanly, no good
source was banned, the guessing source was banned after 10 failures and heard nothing
more, and the xDR writer billed exactly one xDR per completed call (distinct Call-IDs, the
same Call-IDs sipp completed), with nothing dead-lettered, spooled or left reserved.

Good traffic comes from 3 calls/s per address because pike (kamailio.cfg, PIKE_DENSITY 64
requests per 2 s per address) treats more as a flood: a call is 5 requests (INVITE, ACK of
the 407, INVITE, ACK, BYE), so one address above ~6 calls/s is banned however well it
authenticates. Each good sipp therefore sends from a block of loopback addresses
(`-t ui`: one socket per address, the address read from its -inf file).

The callers aim at SOAK_CPS for SOAK_SECONDS, then stop placing calls (sipp's soft exit)
and let the calls in progress finish. Each holds at most half a second of calls at once,
so a stack that cannot keep up (two cores shared with other test runs) places fewer calls
instead of drowning in retransmissions; the rate it reached is printed, never asserted.

TOLLGATE_SOAK_CPS / TOLLGATE_SOAK_SECONDS override the rate and duration;
TOLLGATE_SOAK_TRACE=1 keeps every SIP message of every sipp. The logs of a run (sipp
stats and errors, every server log under stack/) stay in the folder printed at the start.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import random
import re
import resource
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis

from provisioning.xdr_writer import GROUP as XDR_GROUP
from tests.servers import kill_group, log_dir
from tests.sipp import SCENARIOS
from tests.stack import Stack, sip_ping
from tollgate import keyspace

SOAK_CPS = int(os.environ.get("TOLLGATE_SOAK_CPS", "200"))
SOAK_SECONDS = int(os.environ.get("TOLLGATE_SOAK_SECONDS", "120"))
TRACE = os.environ.get("TOLLGATE_SOAK_TRACE") == "1"  # every message of every sipp, to debug
BAD_SHARE = 0.05                 # of the calls come from the password guesser
BAD_SOURCE = "127.0.0.2"
GOOD_UACS = 4                    # good sipp processes, each with its own addresses
SOURCE_CPS = 3                   # per good address: pike bans one address above ~6/s
BAN_AFTER = 10                   # kemi/registrar.py: failures from one source before a ban
ACCOUNTS = 20                    # reservations spread over 20 balances
BALANCE = "10000.00"
RTP_PORTS = 8000                 # rtpengine: 2000 calls in flight
DRAIN_S = max(60, SOAK_SECONDS)  # for the xDR writer to bill the last calls
SIPP_GRACE_S = 60                # sipp's own -timeout beyond the soak
DESTINATIONS = ("1800{:07d}", "4420794{:04d}", "1604555{:04d}")  # toll-free, 2 paid

pytestmark = [pytest.mark.e2e,
              pytest.mark.timeout(180 + SOAK_SECONDS + SIPP_GRACE_S + DRAIN_S)]

TENANT = """\
customers:
  - {{name: "{customer}", currency: USD, credit_limit: "", timezone: UTC, language: en}}
tariffs:
  - name: "{tariff}"
    currency: USD
    rates:
      - {{prefix: "1", price: "0.02", interval: 60/60}}
      - {{prefix: "44", price: "0.05", interval: 60/60}}
      - {{prefix: "1800", price: "0", interval: 1/1}}
products:
  - {{name: "{product}", currency: USD, rating: [{{access_code: "", tariff: "{tariff}"}}]}}
accounts:
{accounts}
"""


@dataclass
class Tenant:
    """The soak's own customer: ACCOUNTS debit accounts with their SIP passwords."""
    tag: str
    passwords: dict[str, str]

    @property
    def accounts(self) -> list[str]:
        return sorted(self.passwords)


@dataclass
class Uac:
    """One sipp caller: its sources, offered rate and calls, then what sipp reported."""
    name: str
    sources: list[str]
    rate: int
    calls: int                   # the most it may place: rate x SOAK_SECONDS
    logs: Path
    port: int = field(default_factory=lambda: quiet_ports(1))
    proc: subprocess.Popen | None = None
    returncode: int | None = None
    stat: dict[str, str] = field(default_factory=dict)

    def count(self, name: str) -> int:
        return int(self.stat.get(name) or 0)

    @property
    def placed(self) -> int:
        return self.count("TotalCallCreated")


@dataclass
class Guesses:
    """What the guessing source heard, per call, from sipp's message trace."""
    calls: int = 0                                        # calls sipp started
    replies: dict[str, list[int]] = field(default_factory=dict)  # Call-ID -> status codes

    @property
    def refused(self) -> int:
        """403s received: each is one failed authentication counted by Kamailio."""
        return sum(codes.count(403) for codes in self.replies.values())

    @property
    def heard(self) -> int:
        """Calls that got any answer at all."""
        return sum(1 for codes in self.replies.values() if codes)

    @property
    def silent(self) -> int:
        return self.calls - self.heard

    @property
    def codes(self) -> set[int]:
        return {code for codes in self.replies.values() for code in codes}

    def heard_after(self, number: int) -> list[str]:
        """Call-IDs of calls after the number-th that got any answer (sipp numbers its
        calls in its Call-IDs: <number>-<pid>@<address>)."""
        return sorted(call_id for call_id, codes in self.replies.items()
                      if codes and int(call_id.split("-", 1)[0]) > number)


@dataclass
class Soak:
    stack: Stack
    tenant: Tenant
    logs: Path
    good: list[Uac]
    bad: Uac
    guesses: Guesses
    completed: set[str]          # Call-IDs of completed good calls (sipp's <log>)
    seconds: float               # first call to last sipp exit
    cpu: dict[str, float]        # CPU seconds per process group, soak + billing
    drops: dict[str, int]        # datagrams dropped by the kernel, per receiving socket
    measured: float              # seconds the CPU times cover (calls, then billing)
    dialogs: str                 # Kamailio's live dialogs once the writer is idle

    @property
    def ok(self) -> int:
        return sum(u.count("SuccessfulCall(C)") for u in self.good)

    @property
    def placed(self) -> int:
        return sum(u.placed for u in self.good)

    @property
    def good_sources(self) -> list[str]:
        return [s for u in self.good for s in u.sources]


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` whole shares that differ by at most one."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def plan(logs: Path, tenant: Tenant) -> tuple[list[Uac], Uac]:
    """The good callers (each with enough addresses for SOURCE_CPS) and the guesser."""
    bad_rate = max(1, round(SOAK_CPS * BAD_SHARE))
    good, host = [], 3                  # 127.0.0.1 is trusted, .2 is the guesser
    for i, rate in enumerate(split(SOAK_CPS - bad_rate, GOOD_UACS)):
        sources = [f"127.0.0.{host + k}" for k in range(math.ceil(rate / SOURCE_CPS))]
        host += len(sources)
        good.append(Uac(f"good{i}", sources, rate, rate * SOAK_SECONDS, logs / f"good{i}"))
    assert host < 255, "too many good sources for one /24: lower SOAK_CPS"
    bad = Uac("bad", [BAD_SOURCE], bad_rate, bad_rate * SOAK_SECONDS, logs / "bad")
    assert bad.calls >= 5 * BAN_AFTER, "too few guesses to see a ban: raise the duration"
    for uac in (*good, bad):
        uac.logs.mkdir(parents=True)
    write_callers(good, tenant)
    account = tenant.accounts[0]
    (bad.logs / "callers.csv").write_text("SEQUENTIAL\n" + "".join(
        f"{account};wrong-{n};4420794{n:04d}\n" for n in range(bad.calls)))
    return good, bad


def write_callers(good: list[Uac], tenant: Tenant) -> None:
    """-inf lines address;port;account;password;dialed, a new dialed number on every call."""
    n = 0
    for uac in good:
        rows = ["SEQUENTIAL"]
        for i in range(uac.calls):
            account = tenant.accounts[n % len(tenant.accounts)]
            dialed = DESTINATIONS[n % len(DESTINATIONS)].format(n % 10_000)
            rows.append(f"{uac.sources[i % len(uac.sources)]};{uac.port};{account};"
                        f"{tenant.passwords[account]};{dialed}")
            n += 1
        (uac.logs / "callers.csv").write_text("\n".join(rows) + "\n")


def provision(stack: Stack, logs: Path) -> Tenant:
    """A customer, tariff, product and debit accounts of this run, imported by the CLI."""
    tag = uuid.uuid4().hex[:8]
    passwords = {f"soak-{tag}-{i:02d}": f"pw-{uuid.uuid4().hex[:12]}" for i in range(ACCOUNTS)}
    names = {"customer": f"Soak {tag}", "tariff": f"Soak {tag}", "product": f"Soak {tag}"}
    accounts = "\n".join(
        f'  - {{id: "{acc}", customer: "{names["customer"]}", product: "{names["product"]}", '
        f'password: "{pw}", billing_model: debit, balance: "{BALANCE}"}}'
        for acc, pw in passwords.items())
    path = logs / "tenant.yaml"
    path.write_text(TENANT.format(accounts=accounts, **names))
    stack.cli("import", str(path))
    return Tenant(tag, passwords)


_handed_out: set[int] = set()


def quiet_ports(count: int) -> int:
    """The first of `count` UDP ports that no socket holds on any address, above the
    ephemeral range (nothing else takes them between this check and sipp's bind) and never
    handed out twice in this run. sipp exits 254 when one of its binds fails: its -p port
    on each source address, and its -mp media ports base..base+3 (default 6000 for all)."""
    while True:
        base = random.randrange(61000, 65000, 4)
        ports = range(base, base + count)
        if _handed_out.intersection(ports):
            continue
        socks = []
        try:
            for port in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("0.0.0.0", port))
            _handed_out.update(ports)
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()


def media_port() -> int:
    """A base for sipp's -mp (it binds base..base+3)."""
    return quiet_ports(4)


def start_gateway(stack: Stack, logs: Path) -> subprocess.Popen:
    """A sipp UAS on the stack's gateway port: 200 with SDP and Record-Route, BYE answered."""
    (logs / "gateway").mkdir()
    return subprocess.Popen(
        ["sipp", "-sf", str(SCENARIOS / "soak-gateway.xml"), "-i", "127.0.0.1",
         "-p", str(stack.gateway_port), "-mp", str(media_port()), "-nostdin", "-aa",
         "-default_behaviors", "all,-abortunexp",
         "-trace_err", "-error_file", "errors.log",
         *(["-trace_msg", "-message_file", "messages.log"] if TRACE else [])],
        cwd=logs / "gateway", stdout=subprocess.DEVNULL,
        stderr=open(logs / "gateway" / "stderr.log", "wb"), start_new_session=True)


def start_uac(uac: Uac, target: str, scenario: str, limit: int, extra: list[str]) -> None:
    """sipp at the caller's rate, at most `limit` calls at once: a stack that falls behind
    slows the callers down instead of drowning in resent requests."""
    args = ["sipp", target, "-sf", str(SCENARIOS / f"{scenario}.xml"),
            "-inf", "callers.csv", "-p", str(uac.port),
            "-mp", str(media_port()), "-r", str(uac.rate), "-m", str(uac.calls),
            "-l", str(limit), "-nostdin",
            "-timeout", f"{SOAK_SECONDS + SIPP_GRACE_S}s", "-timeout_error",
            "-trace_stat", "-stf", "stat.csv", "-fd", "5",
            "-trace_err", "-error_file", "errors.log", *extra]
    uac.proc = subprocess.Popen(args, cwd=uac.logs, stdout=subprocess.DEVNULL,
                                stderr=open(uac.logs / "stderr.log", "wb"))


def soak_window(started: float, uacs: tuple[Uac, ...]) -> None:
    """Let the callers call for SOAK_SECONDS, then stop them placing calls (SIGUSR1: sipp's
    soft exit); the calls in progress finish. A stack slower than SOAK_CPS makes fewer calls
    in the window (the callers hold at most their -l calls at once), not failed ones."""
    for uac in uacs:
        assert uac.proc is not None
        try:
            uac.proc.wait(max(0.0, started + SOAK_SECONDS - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for uac in uacs:
        if uac.proc is not None and uac.proc.poll() is None:
            uac.proc.send_signal(signal.SIGUSR1)


def finish_uac(uac: Uac) -> None:
    assert uac.proc is not None
    try:
        uac.returncode = uac.proc.wait(SOAK_SECONDS + SIPP_GRACE_S + 30)
    except subprocess.TimeoutExpired:
        uac.proc.kill()
        uac.returncode = uac.proc.wait(10)
    rows = list(csv.DictReader((uac.logs / "stat.csv").open(), delimiter=";")) \
        if (uac.logs / "stat.csv").exists() else []
    uac.stat = rows[-1] if rows else {}


def completed_calls(uac: Uac) -> set[str]:
    """Call-IDs sipp logged on the 200 to their BYE."""
    path = uac.logs / "calls.log"
    return {line.split()[0] for line in path.open() if line.strip()} if path.exists() else set()


def read_guesses(uac: Uac) -> Guesses:
    """Per Call-ID, the status codes the guesser received (sipp's -trace_msg)."""
    guesses = Guesses(calls=uac.placed)
    direction, call_id, first = "", "", ""

    def close() -> None:
        if not call_id:
            return
        codes = guesses.replies.setdefault(call_id, [])
        if direction == "received" and first.startswith("SIP/2.0 "):
            codes.append(int(first.split()[1]))

    for line in (uac.logs / "messages.log").open(errors="replace"):
        if line.startswith("-" * 20):
            close()
            direction, call_id, first = "", "", ""
        elif not direction and " message " in line:
            direction = "sent" if "message sent" in line else "received"
        elif direction and not first and line.strip():
            first = line.strip()
        elif line.lower().startswith("call-id:"):
            call_id = line.split(":", 1)[1].strip()
    close()
    return guesses


def process_groups(stack: Stack, gateway: subprocess.Popen) -> dict[str, list[int]]:
    """Every pid of each stack program, Redis, PostgreSQL and the gateway."""
    def tree(root: int) -> list[int]:
        pids, todo = [], [root]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            try:
                todo += [int(k) for k in
                         Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            except OSError:
                pass
        return pids
    groups = {name: tree(p.pid) for name, p in stack.procs.items()}
    groups["redis"] = tree(stack.redis.proc.pid)
    groups["sipp gateway"] = tree(gateway.pid)
    pidfile = stack.pg.data / "postmaster.pid"
    if pidfile.exists():
        groups["postgres"] = tree(int(pidfile.read_text().split()[0]))
    return groups


def cpu_seconds(groups: dict[str, list[int]]) -> dict[str, float]:
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, pids in groups.items():
        ticks = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
            except (OSError, IndexError):
                pass
        out[name] = ticks / hz
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["sipp callers"] = children.ru_utime + children.ru_stime
    return out


def udp_drops(ports: dict[str, int]) -> dict[str, int]:
    """Datagrams the kernel dropped on each named local UDP port (a full receive buffer):
    SIP over UDP loses them until someone resends, so they explain retransmissions."""
    by_port = {port: name for name, port in ports.items()}
    drops = dict.fromkeys(ports, 0)
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        port = int(fields[1].rsplit(":", 1)[1], 16)
        if port in by_port:
            drops[by_port[port]] += int(fields[-1])
    return drops


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent busy since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def setup_ms(uacs: list[Uac]) -> list[float]:
    """First INVITE sent -> 200 received, per completed call (sipp's -trace_rtt, whole ms)."""
    values = []
    for uac in uacs:
        for path in uac.logs.glob("*_rtt.csv"):
            for row in csv.reader(path.open(), delimiter=";"):
                if len(row) >= 2 and row[1].replace(".", "", 1).isdigit():
                    values.append(float(row[1]))
    return sorted(values)


def live_dialogs(stack: Stack) -> str:
    """Kamailio's dialog counters (kamcmd dlg.stats_active): every call has ended, so a
    dialog still counted here never got its end event, nor its xDR."""
    ctl = stack.settings.var_path / "run" / "kamailio_ctl"
    done = subprocess.run(["kamcmd", "-s", f"unix:{ctl}", "dlg.stats_active"],
                          capture_output=True, text=True, timeout=10)
    return " ".join((done.stdout or done.stderr).split())


def redis_client(stack: Stack) -> redis.Redis:
    return redis.Redis(host=stack.settings.redis_host, port=stack.settings.redis_port)


def writer_backlog(r: redis.Redis) -> int:
    """xDR events the writer has not billed yet (stream lag plus unacked)."""
    for group in r.xinfo_groups(keyspace.XDR_STREAM):
        if group["name"] in (XDR_GROUP, XDR_GROUP.encode()):
            return int(group.get("lag") or 0) + int(group["pending"])
    return 0


def spooled_bytes(stack: Stack) -> int:
    return sum(p.stat().st_size for p in (stack.settings.var_path / "spool").glob("xdr.*.spool"))


def poll(check, timeout: float, interval: float = 0.5):
    """check() until it returns something truthy or `timeout` passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def xdr_rows(soak: Soak) -> list[tuple]:
    """(call_id, leg, sip_code, reason, duration) of every xDR of the soak's accounts."""
    with psycopg.connect(soak.stack.pg.dsn()) as conn:
        return conn.execute("SELECT call_id, leg, sip_code, reason, duration FROM xdrs "
                            "WHERE account_id = ANY(%s)", (soak.tenant.accounts,)).fetchall()


def xdr_mismatch(soak: Soak, rows: list[tuple]) -> str:
    """What differs between the xDRs and the calls sipp completed, for the failure message."""
    ids = {row[0] for row in rows}
    missing, extra = sorted(soak.completed - ids), sorted(ids - soak.completed)
    reasons: dict[str, int] = {}
    for row in rows:
        reasons[row[3]] = reasons.get(row[3], 0) + 1
    longest = sorted(rows, key=lambda row: -row[4])[:3]
    repeated = soak.stack.log("xdr-writer").count("already written")
    failed = sum(uac.count("FailedCall(C)") for uac in soak.good)
    return (f"{len(rows)} xDRs ({len(ids)} Call-IDs) for {len(soak.completed)} completed calls "
            f"({failed} failed at sipp): "
            f"{len(missing)} calls without an xDR (e.g. {missing[:3]}), {len(extra)} xDRs of no "
            f"completed call (e.g. {extra[:3]}); reasons {reasons}; longest {longest} (calls "
            f"last under 1 s); {repeated} events repeated to the writer; dialogs still live: "
            f"{live_dialogs(soak.stack)}")


def soak_stack() -> Stack:
    """The test stack with room for the soak's media: rtpengine gets RTP_PORTS ports below
    the IVR's media (20000+) and the other stacks' rtpengine (25000+), far from the
    ephemeral range SIP ports come from (an RTP port equal to a SIP port steals its
    traffic: both bind with SO_REUSEADDR)."""
    stack = Stack(with_gateway=False)
    base = random.randrange(10000, 20000 - RTP_PORTS, 2)
    stack.settings = dataclasses.replace(stack.settings, rtp_port_min=base,
                                         rtp_port_max=base + RTP_PORTS - 1)
    return stack


def report(soak: Soak) -> None:
    print(f"\nsoak: {SOAK_CPS}/s aimed for {SOAK_SECONDS} s ({len(soak.good_sources)} good "
          f"addresses in {len(soak.good)} sipp callers, {soak.bad.rate}/s guesses from "
          f"{BAD_SOURCE}); the callers ran {soak.seconds:.1f} s")
    for uac in (*soak.good, soak.bad):
        print(f"  {uac.name}: {uac.rate}/s aimed, exit {uac.returncode}, placed "
              f"{uac.placed}/{uac.calls}, ok {uac.count('SuccessfulCall(C)')}, failed "
              f"{uac.count('FailedCall(C)')}, retransmissions {uac.count('Retransmissions(C)')}")
    print(f"  good calls: {soak.ok}/{soak.placed} completed; placed at "
          f"{soak.placed / SOAK_SECONDS:.1f}/s over the {SOAK_SECONDS} s window")
    g = soak.guesses
    print(f"  guesser: {g.calls} calls, {g.refused} refused (403), {g.heard} heard anything, "
          f"{g.silent} silent")
    print("  datagrams dropped by full receive buffers: " +
          ", ".join(f"{k} {v}" for k, v in soak.drops.items()))
    print(f"  Kamailio's dialogs after the soak: {soak.dialogs}")
    setup = setup_ms(soak.good)
    if setup:
        print(f"  call setup (first INVITE -> 200, with the 407 round trip): p50 "
              f"{setup[len(setup) // 2]:.0f} ms, p99 {setup[int(len(setup) * 0.99)]:.0f} ms, "
              f"max {setup[-1]:.0f} ms")
    calls = max(1, soak.ok)
    ours = sum(v for k, v in soak.cpu.items() if k != "other processes")
    parts = ", ".join(f"{k} {v * 1000 / calls:.2f}" for k, v in
                      sorted(soak.cpu.items(), key=lambda kv: -kv[1])
                      if v >= 0.05 and k != "other processes")
    print(f"  CPU over {soak.measured:.0f} s (calls, then billing) on {os.cpu_count()} cores: "
          f"{ours:.1f} s = {ours * 1000 / calls:.2f} ms per good call ({parts}); other "
          f"processes {soak.cpu['other processes']:.1f} s")


@pytest.fixture(scope="module")
def soak():
    """Start the stack and gateway, run every caller at once, wait for billing."""
    logs = log_dir("soak")
    print(f"\nsoak logs: {logs}")
    stack = soak_stack()
    # the gateway takes its port before the stack starts, while it is surely still free
    gateway = start_gateway(stack, logs)
    try:
        stack.start()
        (logs / "stack").symlink_to(stack.dir)
        assert gateway.poll() is None, f"the sipp gateway died; see {logs}/gateway"
        tenant = provision(stack, logs)
        good, bad = plan(logs, tenant)
        groups = process_groups(stack, gateway)
        before, busy = cpu_seconds(groups), machine_busy()
        started = time.monotonic()
        # a silent guess lasts 2 s
        start_uac(bad, stack.sip_target, "soak-bad-password", 3 * bad.rate,
                  ["-i", BAD_SOURCE, "-trace_msg", "-message_file", "messages.log"])
        for uac in good:
            # a call lasts ~0.3 s (0-500 ms held), so half a second of calls in flight is
            # room enough, and small enough that the datagrams of every call in flight fit
            # Kamailio's socket buffer (512 KiB) when it falls behind: more overflowed it
            start_uac(uac, stack.sip_target, "soak-call", max(10, uac.rate // 2),
                      ["-t", "ui", "-max_socket", "1000", "-trace_logs", "-log_file", "calls.log",
                       "-trace_rtt", "-rtt_freq", "1",
                       *(["-trace_msg", "-message_file", "messages.log"] if TRACE else [])])
        soak_window(started, (*good, bad))
        for uac in (*good, bad):
            finish_uac(uac)
        seconds = time.monotonic() - started
        drops = udp_drops({"kamailio": stack.settings.sip_port, "gateway": stack.gateway_port})
        r = redis_client(stack)
        poll(lambda: writer_backlog(r) == 0 and spooled_bytes(stack) == 0, DRAIN_S)
        after, busy = cpu_seconds(groups), machine_busy() - busy
        cpu = {k: after[k] - before.get(k, 0.0) for k in after}
        # what the soak had to share the cores with (other stacks, other test runs)
        cpu["other processes"] = max(0.0, busy - sum(cpu.values()))
        result = Soak(stack, tenant, logs, good, bad, read_guesses(bad),
                      set().union(*(completed_calls(u) for u in good)), seconds,
                      cpu, drops, time.monotonic() - started, live_dialogs(stack))
        report(result)
        yield result
    finally:
        kill_group(gateway)
        stack.stop()


def test_every_good_call_is_answered_and_hung_up(soak):
    for uac in soak.good:
        assert (uac.returncode, uac.count("FailedCall(C)")) == (0, 0), \
            f"{uac.name} failed calls; see {uac.logs}/errors.log"
        assert uac.count("SuccessfulCall(C)") == uac.placed > 0, uac.name
    assert len(soak.completed) == soak.ok == soak.placed


def test_no_good_source_is_banned(soak):
    log = soak.stack.log("kamailio")
    banned = set(re.findall(r"AUTH: (\S+) banned after", log)) | \
        set(re.findall(r"flood from (\S+), banned", log))
    assert banned & set(soak.good_sources) == set(), \
        [line for line in log.splitlines() if "banned" in line][:20]
    host, port = soak.stack.settings.sip_address, soak.stack.settings.sip_port
    deaf = [s for s in soak.good_sources if not sip_ping(host, port, source=s)
            .startswith("SIP/2.0 200")]
    assert deaf == []


def test_the_guessing_source_is_banned_after_ten_failures_then_hears_nothing(soak):
    g = soak.guesses
    assert g.calls == soak.bad.placed and g.codes <= {407, 403}, g.codes
    # each 403 is one failure; workers that took a guess before another set the ban still
    # answer theirs (at most one each)
    assert BAN_AFTER <= g.refused <= BAN_AFTER + soak.stack.settings.sip_children - 1, \
        f"{g.refused} guesses refused; see {soak.bad.logs}/messages.log"
    # then silence to the end of the soak: the last four fifths of the guesses heard nothing
    assert g.heard_after(g.calls // 5) == []
    assert f"AUTH: {BAD_SOURCE} banned after {BAN_AFTER} failures" in soak.stack.log("kamailio")
    host, port = soak.stack.settings.sip_address, soak.stack.settings.sip_port
    assert sip_ping(host, port, source=BAD_SOURCE) == ""


def test_every_completed_call_has_exactly_one_xdr(soak):
    expected = len(soak.completed)
    poll(lambda: len(xdr_rows(soak)) >= expected, DRAIN_S)
    assert poll(lambda: writer_backlog(redis_client(soak.stack)) == 0, DRAIN_S)
    rows = xdr_rows(soak)  # nothing left to bill: a late duplicate would show now
    call_ids = [row[0] for row in rows]
    assert len(rows) == expected == soak.ok, xdr_mismatch(soak, rows)
    assert len(set(call_ids)) == len(call_ids), xdr_mismatch(soak, rows)
    assert set(call_ids) == soak.completed, xdr_mismatch(soak, rows)
    assert {(leg, code, reason) for _, leg, code, reason, _ in rows} == \
        {("out", 200, "Normal clearing")}, xdr_mismatch(soak, rows)


def test_nothing_dead_lettered_spooled_or_left_reserved(soak):
    r = redis_client(soak.stack)
    assert poll(lambda: writer_backlog(r) == 0, DRAIN_S)
    assert r.xlen(keyspace.XDR_DEAD) == 0, r.xrange(keyspace.XDR_DEAD, count=5)
    assert r.xpending(keyspace.XDR_STREAM, XDR_GROUP)["pending"] == 0
    assert spooled_bytes(soak.stack) == 0
    reserved = {acc: r.hlen(keyspace.reservations("account", acc))
                for acc in soak.tenant.accounts}
    assert sum(reserved.values()) == 0, reserved
