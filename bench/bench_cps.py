"""SIP calls per second: tollgate's KEMI routing against a native kamailio.cfg, one run.

`python -m bench cps` starts a whole tollgate stack (tests.stack.Stack, no IVR calls),
provisions debit accounts without a calling-via-IVR app so every paid call runs digest
auth, rating, the Redis reservation and an xDR, then starts a second Kamailio with
bench/native/kamailio-native.cfg (same steps, htable lookups, ndb_redis XADD) on the same
rtpengine, Redis and sipp UAS gateway. A third side calls through the same tollgate as
accounts of a virtual PBX client with every policy on (max calls, the IP filter, a max
daily usage, rating profiles, an outgoing DDI). It steps the sipp call rate up, the
sides in turn, until a side's run is not clean (a failed call, a resent request, an
rtpengine error, or short of the offered rate), then measures all at the highest rate all
sustain: setup percentiles and CPU per call. Nothing is asserted; bench/README.md has the
numbers.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import msgpack
import redis

from tests.servers import free_port, kill_group
from tests.stack import Stack, wait_sip
from tollgate import keyspace
from tollgate.net import wait_rtpengine

HERE = Path(__file__).resolve().parent
XDR_STREAM = keyspace.XDR_STREAM
SCENARIO = HERE / "sipp" / "call.xml"
NATIVE_CFG = HERE / "native" / "kamailio-native.cfg"

ACCOUNTS = 20                    # bench callers (reservations spread over 20 balances)
BALANCE = "10000.00000"          # per account: 1e9 micro-units still fits a Kamailio int
DESTINATIONS = ("4420794{:05d}", "42022{:07d}", "1604555{:04d}")  # paid: 44, 420, 1
RUN_S = 5                        # seconds of new calls per step
RETRIES = 1                      # a step that is not clean is run once more
RATES = (50, 100, 150, 200, 300, 400, 500, 600, 800, 1000, 1200)
BISECT = 2                       # extra runs per side between last clean and failed rate
SHORTFALL = 0.95                 # a step must complete >= 95% of the offered rate
RTP_BASE, RTP_PORTS = 10000, 8000  # rtpengine ports: 2000 calls in flight
BUDGET_S = 240                   # for the whole ramp (steps wait for the xDR writer)

BENCH_TENANT = """\
customers:
  - {{name: Bench Calls, currency: USD, credit_limit: "", timezone: UTC, language: en}}
  - {{name: Bench PBX, currency: USD, credit_limit: "", timezone: Europe/Madrid, language: en,
      max_calls: 100000, ip_filter: true, authorized_sources: [127.0.0.0/8],
      allowed_countries: [ES], max_daily_usage: "1000000.00", outgoing_ddi: "34910000000",
      rating_profiles: [{{product: Bench, activation: "2026-01-01T00:00:00Z"}}]}}
tariffs:
  - name: Bench
    currency: USD
    rates:
      - {{prefix: "1", price: "0.02", interval: 60/60}}
      - {{prefix: "44", price: "0.05", interval: 60/60}}
      - {{prefix: "420", price: "0.07", interval: 60/60}}
      - {{prefix: "1800", price: "0", interval: 1/1}}
      - {{prefix: "1888", price: "0", interval: 1/1}}
      - {{prefix: "1877", price: "0", interval: 1/1}}
products:
  - {{name: Bench, currency: USD, rating: [{{access_code: "", tariff: Bench}}]}}
accounts:
{accounts}
"""


@dataclass
class Step:
    """One sipp run at one offered rate."""
    rate: int
    calls: int
    ok: int
    failed: int
    achieved: float          # successful call setups per second, first to last 200
    setup_ms: list[float]    # INVITE -> 200, one per successful call
    retrans: int
    logs: Path
    media_errors: int = 0

    @property
    def clean(self) -> bool:
        """Sustained: every call set up, at the offered rate, no request needed resending
        (sipp resends an unanswered INVITE or BYE after 500 ms), rtpengine answered all."""
        return self.failed == 0 and self.ok == self.calls and self.retrans == 0 and \
            self.media_errors == 0 and self.achieved >= SHORTFALL * self.rate

    def pct(self, p: float) -> float:
        values = sorted(self.setup_ms)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(p / 100 * len(values)))]


def make_stack() -> Stack:
    """A test stack with room for the bench's media: Stack gives rtpengine 200 ports (50
    calls at 4 ports each), which runs out at ~150 calls/s of 0-500 ms calls.

    The range stays below 20000 (Stack's IVR media) and far from the ephemeral range the
    SIP ports come from: rtpengine and Kamailio both bind with SO_REUSEADDR, so an RTP
    port that happens to be a proxy's SIP port silently steals its traffic."""
    stack = Stack(with_gateway=False)
    stack.settings = dataclasses.replace(stack.settings, rtp_port_min=RTP_BASE,
                                         rtp_port_max=RTP_BASE + RTP_PORTS - 1)
    return stack


def redis_client(stack: Stack) -> redis.Redis:
    return redis.Redis(host=stack.settings.redis_host, port=stack.settings.redis_port)


PLAIN, POLICIES = "bench", "pbx"   # account ID prefixes: plain client, policy-heavy client


def account_id(i: int, kind: str = PLAIN) -> str:
    return f"{kind}{i:03d}"


def provision(stack: Stack, work: Path) -> None:
    """The bench tenant, imported through the CLI like an operator would: the plain
    client's accounts, and the policy-heavy client's (its DDI an alias of the first)."""
    lines = []
    for kind, customer in ((PLAIN, "Bench Calls"), (POLICIES, "Bench PBX")):
        for i in range(1, ACCOUNTS + 1):
            alias = ', aliases: [{id: "34910000000"}]' if (kind, i) == (POLICIES, 1) else ""
            lines.append(f'  - {{id: "{account_id(i, kind)}", customer: {customer}, '
                         f'product: Bench, password: "pw-{i:03d}", billing_model: debit, '
                         f'balance: "{BALANCE}"{alias}}}')
    path = work / "bench-tenant.yaml"
    path.write_text(BENCH_TENANT.format(accounts="\n".join(lines)))
    stack.cli("import", str(path))


def callers_csv(work: Path, kind: str = PLAIN) -> Path:
    """sipp -inf file: caller;password;dialed, a new dialed number on every line."""
    path = work / f"callers-{kind}.csv"
    rows = ["SEQUENTIAL"]
    for n in range(3000):
        i = n % ACCOUNTS + 1
        dest = DESTINATIONS[n % len(DESTINATIONS)].format(n)
        rows.append(f"{account_id(i, kind)};pw-{i:03d};{dest}")
    path.write_text("\n".join(rows) + "\n")
    return path


def native_data(stack: Stack) -> str:
    """route[LOAD_DATA]: the bench accounts and their tariff's rates, read from Redis."""
    r = redis_client(stack)
    out, tariffs = ["route[LOAD_DATA] {"], set()
    for i in range(1, ACCOUNTS + 1):
        acc = msgpack.unpackb(r.get(keyspace.account(account_id(i))), raw=False)
        product = msgpack.unpackb(r.get(keyspace.product(acc['product_id'])), raw=False)
        tariff = next(int(e["tariff_id"]) for e in product["rating"]
                      if e.get("access_code", "") == "")
        tariffs.add(tariff)
        micro = int(round(float(r.get(keyspace.balance("account", acc['id'])).decode()) * 100000))
        out += [f'\t$sht(acct=>pw:{acc["id"]}) = "{acc["password"]}";',
                f"\t$sht(acct=>tariff:{acc['id']}) = {tariff};",
                f"\t$sht(acct=>bal:{acc['id']}) = {micro};",
                f"\t$sht(resv=>{acc['id']}) = 0;"]
    for tariff in sorted(tariffs):
        for prefix, packed in sorted(r.hgetall(keyspace.rates(tariff)).items()):
            rate = msgpack.unpackb(packed, raw=False)
            price = -1 if rate["forbidden"] else int(round(float(rate["price_first"]) * 100000))
            out.append(f"\t$sht(rates=>{tariff}:{prefix.decode()}) = {price};")
    out.append("}")
    return "\n".join(out)


class NativeKamailio:
    """kamailio-native.cfg on its own port, sharing the stack's rtpengine, Redis, gateway."""

    def __init__(self, stack: Stack, work: Path):
        self.stack = stack
        self.dir = work / "native"
        self.port = free_port()
        self.ctl = self.dir / "kamailio_ctl"
        self.log = self.dir / "kamailio.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "NativeKamailio":
        s = self.stack.settings
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(NATIVE_CFG, self.dir / "kamailio.cfg")
        (self.dir / "native-local.cfg").write_text("\n".join([
            f'#!define RTPENGINE_SOCK "udp:{s.rtpengine_address}:{s.rtpengine_ng_port}"',
            f'#!define REDIS_SERVER "name=tg;addr={s.redis_host};port={s.redis_port}"',
            f'#!define GATEWAY "{s.pstn_gateway}"',
            f'#!define REALM "{s.sip_domain}"',
            f'#!define TRUSTED "{s.ivr_address}"',
            f'#!define CTL_SOCKET "unix:{self.ctl}"',
            f"listen=udp:{s.sip_address}:{self.port}",
            f"children={s.sip_children}", ""]))
        (self.dir / "native-data.cfg").write_text(native_data(self.stack) + "\n")
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            ["kamailio", "-f", str(self.dir / "kamailio.cfg"), "-DD", "-E", "-m", "128",
             "-M", "16", "-Y", str(self.dir)], cwd=self.dir, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_sip(s.sip_address, self.port, timeout=15):
            raise RuntimeError(f"native Kamailio did not start; see {self.dir}/kamailio.log")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)

    @property
    def target(self) -> str:
        return f"{self.stack.settings.sip_address}:{self.port}"


def media_port() -> int:
    """A base for sipp's -mp: it binds audio and video RTP/RTCP on base..base+3."""
    while True:
        base = random.randrange(61000, 65000, 4)  # above the ephemeral range
        socks = []
        try:
            for port in range(base, base + 4):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()


def gateway(stack: Stack, work: Path) -> subprocess.Popen:
    """A sipp UAS as the PSTN gateway: 200 with SDP and Record-Route, BYE answered."""
    logs = work / "gateway"
    logs.mkdir(exist_ok=True)
    return subprocess.Popen(
        ["sipp", "-sf", str(HERE / "sipp" / "gateway.xml"), "-i", "127.0.0.1",
         "-p", str(stack.gateway_port),
         "-mp", str(media_port()), "-nostdin", "-aa"],
        cwd=logs, stdout=subprocess.DEVNULL, stderr=open(logs / "stderr.log", "wb"),
        start_new_session=True)


def run_calls(target: str, rate: int, seconds: float, callers: Path, logs: Path,
              trace: bool = False) -> Step:
    """sipp at `rate` calls/s for `seconds`; counts, setup times and achieved rate.

    Setup times come from sipp's rtt file (4 ms steps: sipp's clock ticks with the
    kernel's); with `trace` from its message trace instead (microseconds)."""
    logs.mkdir(parents=True, exist_ok=True)
    calls = max(1, int(rate * seconds))
    limit = max(50, rate)  # setup + 0-500 ms hold keeps ~0.3 s of calls in flight
    args = ["sipp", target, "-sf", str(SCENARIO), "-inf", str(callers), "-i", "127.0.0.1",
            "-p", str(free_port()), "-mp", str(media_port()), "-r", str(rate),
            "-m", str(calls), "-l", str(limit), "-nostdin",
            "-timeout", f"{int(seconds) + 20}s", "-timeout_error",
            "-trace_stat", "-stf", "stat.csv", "-fd", "60",
            "-trace_rtt", "-rtt_freq", "1", "-trace_err", "-error_file", "errors.log"]
    if trace:
        args += ["-trace_msg", "-message_file", "messages.log"]
    proc = subprocess.run(args, cwd=logs, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=seconds + 40)
    (logs / "stderr.log").write_bytes(proc.stderr)
    stat = _last_stat(logs / "stat.csv")
    ok, failed = int(stat.get("SuccessfulCall(C)", 0)), int(stat.get("FailedCall(C)", 0))
    retrans = int(stat.get("Retransmissions(C)", 0))
    stamps, setup = _rtt(logs)
    # sipp's rtt file stamps each 200 in ms since start (whole-ms response times)
    achieved = 1000 * (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    if proc.returncode != 0 and failed == 0:
        failed = max(1, calls - ok)
    if trace:
        setup = _traced_setup(logs / "messages.log")
    return Step(rate, calls, ok, failed, achieved, setup, retrans, logs)


_STAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(\.\d+)")


def _traced_setup(path: Path) -> list[float]:
    """Per call: first INVITE sent -> 200 to the authenticated INVITE received, in ms."""
    sent: dict[str, float] = {}
    setup = []
    stamp = 0.0
    block: list[str] = []

    def close(block: list[str]) -> None:
        text = "\n".join(block)
        call = re.search(r"^Call-ID: *(\S+)", text, re.M | re.I)
        if call is None:
            return
        if "message sent" in block[0] and "\nINVITE " in text and "CSeq: 1 INVITE" in text:
            sent.setdefault(call.group(1), stamp)
        elif "message received" in block[0] and "SIP/2.0 200" in text and \
                "CSeq: 2 INVITE" in text and call.group(1) in sent:
            setup.append((stamp - sent.pop(call.group(1))) * 1000)

    for line in path.open(errors="replace"):
        if line.startswith("-" * 20):
            if block:
                close(block)
            block = []
            when = _STAMP.search(line)
            if when is not None:
                stamp = time.mktime(time.strptime(when.group(1), "%Y-%m-%d %H:%M:%S")) + \
                    float(when.group(2))
        elif line.strip():
            block.append(line.rstrip("\r\n"))
    if block:
        close(block)
    return setup


def _last_stat(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    rows = list(csv.DictReader(path.open(), delimiter=";"))
    return rows[-1] if rows else {}


def _rtt(logs: Path) -> tuple[list[float], list[float]]:
    """(time of each 200, setup ms) from sipp's -trace_rtt file."""
    stamps, setup = [], []
    for path in logs.glob("*_rtt.csv"):
        for row in csv.reader(path.open(), delimiter=";"):
            if len(row) < 3 or not row[0].replace(".", "", 1).isdigit():
                continue
            stamps.append(float(row[0]))
            setup.append(float(row[1]))
    stamps.sort()
    return stamps, setup


class Media:
    """Both proxies' rtpengine health: errors logged during a step, and re-enabling.

    Kamailio's rtpengine module stops using an rtpengine that timed out for 60 s and then
    relays calls without media anchoring; a step like that measures something else."""

    def __init__(self, stack: Stack, native: NativeKamailio):
        self.logs = {"tollgate": stack.dir / "kamailio.log", "policies": stack.dir / "kamailio.log",
                     "native": native.log}
        self.ctls = [stack.settings.var_path / "run" / "kamailio_ctl", native.ctl]
        self.marks: dict[str, int] = {}
        self.warned: set[Path] = set()

    def mark(self, name: str) -> None:
        self.marks[name] = self.logs[name].stat().st_size

    def errors(self, name: str) -> int:
        with self.logs[name].open("rb") as f:
            f.seek(self.marks.get(name, 0))
            return sum(1 for line in f if b"ERROR" in line and b"rtpengine" in line)

    def enable(self) -> None:
        for ctl in self.ctls:
            done = subprocess.run(["kamcmd", "-s", f"unix:{ctl}", "rtpengine.enable", "all",
                                   "1"], capture_output=True, text=True, timeout=10)
            if done.returncode != 0 and ctl not in self.warned:
                self.warned.add(ctl)
                print(f"  kamcmd rtpengine.enable on {ctl}: {done.stderr.strip()}")


def writer_backlog(r: redis.Redis) -> int:
    """xDR events the writer has not billed yet (stream lag plus unacked)."""
    for group in r.xinfo_groups(XDR_STREAM):
        if group["name"] in (b"writers", "writers"):
            return int(group.get("lag") or 0) + int(group["pending"])
    return 0


def drained(stack: Stack, timeout: float = 60) -> float:
    """Wait until the xDR writer has billed every call of the previous run; seconds waited.

    The writer bills after the calls end, so a short run can finish before its billing
    does; the next run must not compete with that backlog for the CPU."""
    r = redis_client(stack)
    started = time.monotonic()
    while time.monotonic() - started < timeout and writer_backlog(r) > 0:
        time.sleep(0.1)
    waited = time.monotonic() - started
    time.sleep(0.5)
    return waited


def ramp(sides: dict[str, tuple[str, Path]], work: Path, settle,
         media: Media) -> dict[str, int]:
    """Step the rate up, both sides interleaved at each rate (the VM is shared, so load
    from elsewhere hits both alike), until a side has a run that is not clean; then up to
    BISECT runs halving the gap between its last clean rate and the failed one (10/s
    steps). The highest clean rate of each side."""
    best = {name: 0 for name in sides}
    failed: dict[str, int] = {}
    started = time.monotonic()

    def attempt(name: str, rate: int) -> bool:
        for tries in range(1, RETRIES + 2):  # one hiccup of the shared VM is not a limit
            media.enable()
            media.mark(name)
            target, callers = sides[name]
            step = run_calls(target, rate, RUN_S, callers, work / f"{name}-{rate}-{tries}")
            lag = settle()
            step.media_errors = media.errors(name)
            print(f"  {name:8s} {rate:5d}/s offered: {step.ok}/{step.calls} ok, {step.failed} "
                  f"failed, {step.achieved:6.1f}/s achieved, setup p50 {step.pct(50):.0f} ms "
                  f"p99 {step.pct(99):.0f} ms, {step.retrans} retransmissions, "
                  f"{step.media_errors} rtpengine errors, xDRs billed {lag:.1f} s after the "
                  "last call", flush=True)
            if step.clean:
                best[name] = max(best[name], rate)
                return True
        return False

    for rate in RATES:
        climbing = [name for name in sides if name not in failed]
        if not climbing or time.monotonic() - started > BUDGET_S:
            break
        for name in climbing:
            if not attempt(name, rate):
                failed[name] = rate
    for name, low_fail in failed.items():
        for _ in range(BISECT):
            middle = (best[name] + low_fail) // 2 // 10 * 10
            if not best[name] < middle < low_fail:
                break
            if not attempt(name, middle):
                low_fail = middle
    return best


def cpu_ticks(pids: dict[str, list[int]]) -> dict[str, int]:
    """utime+stime clock ticks per named process group."""
    out = {}
    for name, group in pids.items():
        total = 0
        for pid in group:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError):
                pass
        out[name] = total
    return out


def process_groups(stack: Stack, native: NativeKamailio,
                   gw: subprocess.Popen) -> dict[str, list[int]]:
    """Kamailio (both), rtpengine, redis, xDR writer, postgres, gateway: every pid of each."""
    def tree(root: int) -> list[int]:
        pids, todo = [], [root]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            try:
                kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                kids = []
            todo += [int(k) for k in kids]
        return pids
    groups = {name: tree(p.pid) for name, p in stack.procs.items()}
    groups["native kamailio"] = tree(native.proc.pid)
    groups["sipp gateway"] = tree(gw.pid)
    groups["redis"] = tree(stack.redis.proc.pid)
    pidfile = stack.pg.data / "postmaster.pid"
    if pidfile.exists():
        groups["postgres"] = tree(int(pidfile.read_text().split()[0]))
    return groups


def measure_cpu(stack, native, gw, target, rate, callers,
                logs) -> tuple[Step, dict[str, float]]:
    """One run with the CPU seconds each process used for it (until its xDRs are billed);
    "sipp caller" is the load generator itself (a child of this process)."""
    groups = process_groups(stack, native, gw)
    before = cpu_ticks(groups)
    caller = resource.getrusage(resource.RUSAGE_CHILDREN)
    step = run_calls(target, rate, RUN_S * 2, callers, logs, trace=True)
    drained(stack)  # the xDR writer's billing of these calls counts too
    after = cpu_ticks(groups)
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    hz = os.sysconf("SC_CLK_TCK")
    used = {k: (after[k] - before[k]) / hz for k in groups if after[k] > before[k]}
    used["sipp caller"] = done.ru_utime + done.ru_stime - caller.ru_utime - caller.ru_stime
    return step, used


def _stop(signum, frame):
    raise SystemExit(128 + signum)  # run the finally blocks: no stray servers


def profile(stack: Stack, work: Path, callers: Path, rate: int, seconds: int) -> None:
    """`--profile RATE`: py-spy samples every Kamailio SIP worker while tollgate takes
    calls at RATE/s, and prints where the Python routing spends its time (own time and
    time under each function). py-spy must be on PATH (`pip install py-spy`)."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("bench cps --profile: py-spy is not on PATH (pip install py-spy)")
    main_pid = stack.procs["kamailio"].pid
    workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(main_pid)],
                                              capture_output=True, text=True).stdout.split()]
    spies = [subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw",
                               "--rate", "200", "--duration", str(seconds + 2),
                               "--output", str(work / f"spy-{pid}.txt"), "--nonblocking"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for pid in workers]
    step = run_calls(stack.sip_target, rate, seconds, callers, work / f"profile-{rate}")
    for spy_proc in spies:
        spy_proc.wait(60)
    own: dict[str, int] = {}
    under: dict[str, int] = {}
    total = 0
    for path in work.glob("spy-*.txt"):
        for line in path.read_text().splitlines():
            stack_text, _, count = line.rpartition(" ")
            frames = [f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].split(":")[0].rstrip(")")
                      for f in stack_text.split(";") if f]
            n = int(count)
            total += n
            if frames:
                own[frames[-1]] = own.get(frames[-1], 0) + n
            for frame in set(frames):
                under[frame] = under.get(frame, 0) + n
    print(f"profile at {rate}/s for {seconds} s: {step.ok}/{step.calls} ok, "
          f"{len(workers)} Kamailio processes, {total} samples with Python on the stack")
    for title, table in (("own time", own), ("time under", under)):
        print(f"  {title} (share of Python samples):")
        for frame, n in sorted(table.items(), key=lambda kv: -kv[1])[:25]:
            print(f"    {100 * n / max(total, 1):5.1f}%  {frame}")


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    args = sys.argv[1:]
    profile_rate = int(args[args.index("--profile") + 1]) if "--profile" in args else 0
    work = Path(tempfile.mkdtemp(prefix="bench-cps-"))
    print(f"logs in {work}", flush=True)
    stack = make_stack()
    native = None
    gw = None
    try:
        stack.start()
        provision(stack, work)
        callers = callers_csv(work)
        gw = gateway(stack, work)
        if profile_rate:
            run_calls(stack.sip_target, 20, 1, callers, work / "warmup")
            profile(stack, work, callers, profile_rate, 20)
            return
        native = NativeKamailio(stack, work).start()
        sides = {"tollgate": (stack.sip_target, callers),
                 "policies": (stack.sip_target, callers_csv(work, POLICIES)),
                 "native": (native.target, callers)}
        for name, (target, who) in sides.items():  # warm caches, rtpengine, nonces
            warm = run_calls(target, 20, 1, who, work / f"{name}-warmup")
            if not warm.clean:
                print(f"  {name} warm-up failed: {warm.ok}/{warm.calls} ok; see {warm.logs}")
        drained(stack)
        media = Media(stack, native)
        best = ramp(sides, work, lambda: drained(stack), media)
        common = min(best.values()) or RATES[0]
        # the ramp overloads rtpengine (past ~700/s it answers "Unknown call-id" for a
        # while): measure on a fresh one
        stack.restart("rtpengine")
        if not wait_rtpengine(stack.settings.rtpengine_address,
                              stack.settings.rtpengine_ng_port):
            raise RuntimeError("rtpengine did not come back after its restart")
        for _ in range(3):  # a longer run may not hold where a short step did: step down
            print(f"  setup times at {common}/s, {RUN_S * 2} s each:", flush=True)
            final, cpu = {}, {}
            for name, (target, who) in sides.items():
                drained(stack)
                media.enable()
                media.mark(name)
                final[name], cpu[name] = measure_cpu(stack, native, gw, target, common,
                                                     who, work / f"{name}-common-{common}")
                step = final[name]
                step.media_errors = media.errors(name)
                print(f"  {name:8s} {step.ok}/{step.calls} ok, {step.failed} failed, "
                      f"{step.achieved:.1f}/s, {step.retrans} retransmissions, "
                      f"{step.media_errors} rtpengine errors", flush=True)
            if all(step.clean for step in final.values()):
                break
            common = max(10, int(common * 0.8) // 10 * 10)
        report(best, common, final, cpu)
        errors = [line for line in stack.log("kamailio").splitlines()
                  if " ERROR:" in line or "CRITICAL" in line]
        if errors:
            print(f"  tollgate Kamailio logged {len(errors)} errors (overloaded steps included), "
                  f"first: {errors[0][:200]}")
    finally:
        if native is not None:
            native.stop()
        if gw is not None:
            kill_group(gw)
        stack.stop()


def report(best: dict[str, int], common: int, final: dict[str, Step],
           cpu: dict[str, dict[str, float]]) -> None:
    t, n = best["tollgate"], best["native"]
    ratio = t / n if n else float("nan")
    print()
    print(f"max CPS ({RUN_S} s steps of 0-500 ms calls; a step counts with no failed call, "
          f"no retransmission, >= {SHORTFALL:.0%} of the offered rate):")
    print(f"  tollgate (KEMI)  {t:6d}/s")
    print(f"  native cfg       {n:6d}/s")
    met = "met" if ratio >= 0.85 else "missed"
    print(f"  ratio            {ratio:6.2f}   (target >= 0.85: {met})")
    p = best["policies"]
    heavy = p / t if t else float("nan")
    print(f"  tollgate, virtual PBX client with every policy on  {p:6d}/s")
    met = "met" if heavy >= 0.90 else "missed"
    print(f"  policies / plain tollgate  {heavy:6.2f}   (target >= 0.90: {met})")
    print(f"call setup, first INVITE sent -> 200 received (incl. the 407 round trip), "
          f"{RUN_S * 2} s at {common}/s:")
    for name, step in final.items():
        print(f"  {name:8s} p50 {step.pct(50):6.2f} ms  p99 {step.pct(99):6.2f} ms  "
              f"({step.ok}/{step.calls} ok, {step.failed} failed, {step.achieved:.1f}/s)")
    print(f"CPU per call (ms) of each process group during the {RUN_S * 2} s runs at {common}/s:")
    for name, used in cpu.items():
        calls = max(1, final[name].ok)
        total = sum(used.values()) * 1000 / calls
        parts = ", ".join(f"{k} {v * 1000 / calls:.2f}" for k, v in
                          sorted(used.items(), key=lambda kv: -kv[1]) if v >= 0.05)
        print(f"  {name:8s} {total:.2f} ms in all: {parts}")


if __name__ == "__main__":
    main()
