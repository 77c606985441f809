"""IVR sessions held at once: the whole stack, half the callers in the menu, half bridged.

`python -m bench ivr [--steps 100,200,300,350,400] [--hold 60] [--rate 20] [--workers 1]
[--max-sessions 500] [--no-inject-dtmf]` starts a tollgate stack (tests.stack.Stack) with
the IVR allowed --max-sessions callers per worker, imports a bench tenant (callers who
call via a pass-through IVR, each with its own code), and for each step of N sessions
runs two sipp callers through Kamailio at --rate new sessions/s: N/2 stay in the menu
(no digit: the IVR replays its prompt), N/2 send their code as SIP INFO digits and are
bridged to a sipp gateway. Every party echoes RTP (sipp -rtp_echo), so media flows on
every leg through rtpengine. Once all are up, a --hold second window measures CPU and
memory of each process and checks that every RTP stream in rtpengine moved packets
(OPTIONS pings time the IVR's and Kamailio's answers throughout). A step counts when
every call succeeded, every session was up through the window and every bridged caller
reached the gateway; the ramp stops at the second failed try.
Nothing is asserted; bench/README.md and ivr/README.md keep the numbers.
"""
from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench_cps import cpu_ticks, drained, media_port
from tests.servers import free_port, kill_group
from tests.stack import Stack, sip_ping
from tollgate import ng
from tollgate import stack as tgstack

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MENU, PIN = HERE / "sipp" / "ivr-menu.xml", HERE / "sipp" / "ivr-pin.xml"
GATEWAY = HERE / "sipp" / "gateway.xml"

STEPS = (100, 200, 300, 350, 400)
HOLD_S = 60                 # every session up at once for this long
RATE = 20                   # new sessions per second (both callers together)
SETTLE_S = 8                # after the last INVITE: last answers, codes, toll legs
SPARE_S = 30                # calls outlast the window by this much: reading rtpengine's
                            # counters of every call takes seconds on a busy machine
ACCOUNTS = 50
ASSOCIATED = "1999555"      # callers' associated number: code = <ASSOCIATED>#<code>
RTP_BASE, RTP_PORTS = 10000, 8000  # rtpengine: 1.5 calls a session, 4 ports a call

BENCH_TENANT = """\
customers:
  - {{name: Bench IVR, currency: USD, credit_limit: "", timezone: UTC, language: en}}
tariffs:
  - name: Bench IVR
    currency: USD
    rates:
      - {{prefix: "1", price: "0.02", interval: 60/60}}
products:
  - {{name: Bench IVR, currency: USD, rating: [{{access_code: "", tariff: Bench IVR}}]}}
apps:
  # the seed's defaults, except that a silent caller hears the prompt again and again
  # instead of being sent away after 3 tries: the menu half stays for the whole hold
  - name: Bench PIN
    type: pass_through
    settings: {{authorize_paid_calls: true, auth_code_as_account_id: true,
               use_associated_number: true, min_auth_code_length: 4,
               max_auth_code_length: 4, max_login_attempts: 1000}}
accounts:
{accounts}
"""


def account_id(i: int) -> str:
    return f"{ASSOCIATED}{i:04d}"


def code(i: int) -> str:
    return f"{4000 + i:04d}"


def provision(stack: Stack, work: Path) -> None:
    """Callers that call via the IVR; each one's code makes it pay for its own toll leg."""
    lines = [f'  - {{id: "{account_id(i)}", customer: Bench IVR, product: Bench IVR, '
             f'password: "pw-{i:03d}", associated_number: "{ASSOCIATED}", '
             f'ivr_app: Bench PIN, billing_model: debit, balance: "10000.00000", '
             f'aliases: [{{id: "{ASSOCIATED}#{code(i)}", allow_auth: false}}]}}'
             for i in range(1, ACCOUNTS + 1)]
    path = work / "bench-tenant.yaml"
    path.write_text(BENCH_TENANT.format(accounts="\n".join(lines)))
    stack.cli("import", str(path))


def callers_csv(path: Path, calls: int, offset: int, digits: bool) -> Path:
    """sipp -inf: caller;password;dialed[;d1;d2;d3;d4], a new paid number every call."""
    rows = ["SEQUENTIAL"]
    for n in range(calls):
        i = (offset + n) % ACCOUNTS + 1
        row = [account_id(i), f"pw-{i:03d}", f"1212{(offset + n) % 10_000_000:07d}"]
        rows.append(";".join(row + (list(code(i)) if digits else [])))
    path.write_text("\n".join(rows) + "\n")
    return path


# rtpengine's ng protocol (tollgate/ng.py): the calls and their per-stream counters

class Ng(ng.Ng):
    """The ng client, with the bench's questions."""

    def __init__(self, host: str, port: int):
        super().__init__(host, port, timeout=10)

    def calls(self) -> list[bytes]:
        return list(self("list", limit=100000).get("calls", []))

    def rtp_packets(self) -> dict[tuple[bytes, bytes, int], int] | None:
        """Packets received per (call, tag, media): the RTP stream of each side of each
        call. A side whose count stands still sends nothing: one-way audio. None when
        rtpengine is too busy to answer within 10 s."""
        try:
            return self._rtp_packets()
        except TimeoutError:
            return None

    def _rtp_packets(self) -> dict[tuple[bytes, bytes, int], int]:
        out = {}
        for call in self.calls():
            reply = self("query", **{"call-id": call})
            for tag, side in (reply.get("tags") or {}).items():
                for n, media in enumerate(side.get("medias") or []):
                    streams = media.get("streams") or []
                    if streams:
                        out[(call, tag.encode(), n)] = int(streams[0]["stats"]["packets"])
        return out

    def close(self) -> None:
        self.sock.close()


# processes and what they use

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


def memory_mib(pids: list[int]) -> float:
    """Proportional set size of a process group (Kamailio's workers share memory)."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        found = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        total += int(found.group(1)) if found else 0
    return total / 1024


def thread_ticks(pids: list[int]) -> dict[str, int]:
    """utime+stime clock ticks per thread name (pjsua: python = the event loop and every
    callback, clock = the conference bridge mixing and encoding, media = RTP receive)."""
    out: dict[str, int] = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                name = (task / "comm").read_text().strip()
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])
    return out


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class Prober(threading.Thread):
    """SIP OPTIONS to each IVR worker and to Kamailio twice a second: how long a new
    request waits in each (pjsua answers OPTIONS from the same loop that answers INVITEs;
    Kamailio gives up on an IVR worker after ivr_answer_timeout)."""

    def __init__(self, targets: dict[str, tuple[str, int]]):
        super().__init__(daemon=True)
        self.targets = targets
        self.ms: dict[str, list[float]] = {name: [] for name in targets}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            for name, (host, port) in self.targets.items():
                sent = time.monotonic()
                answered = sip_ping(host, port, timeout=3.0)
                self.ms[name].append((time.monotonic() - sent) * 1000 if answered else 3000.0)

    def stop(self) -> dict[str, list[float]]:
        self.done.set()
        self.join()
        return self.ms


@dataclass
class Step:
    sessions: int
    ok: int = 0
    failed: int = 0
    calls: int = 0
    retrans: int = 0
    up_start: int = 0          # rtpengine calls when the window opened
    up_end: int = 0
    expected_up: int = 0
    streams: int = 0
    silent: list = field(default_factory=list)
    bridged: int = 0
    setup_ms: list = field(default_factory=list)
    bridge_ms: list = field(default_factory=list)
    ramp_cpu: dict = field(default_factory=dict)  # group -> cores while calls were set up
    cpu: dict = field(default_factory=dict)     # group -> cores during the window
    options_ms: dict = field(default_factory=dict)  # IVR worker / Kamailio -> OPTIONS times
    ivr_threads: dict = field(default_factory=dict)  # IVR thread name -> cores
    mem: dict = field(default_factory=dict)     # group -> MiB at the end of the window
    other_cores: float = 0.0                    # CPU used by everything else on the box
    load: str = ""
    ivr_errors: int = 0
    query_s: float = 0.0                        # reading the counters at the window's end
    ng_answered: bool = True                    # rtpengine answered every ng query
    logs: Path = Path()

    @property
    def clean(self) -> bool:
        return (self.failed == 0 and self.ok == self.calls == self.sessions
                and self.up_start >= self.expected_up and self.up_end >= self.expected_up
                and not self.silent and self.bridged >= self.sessions // 2)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


class Bench:
    def __init__(self, work: Path, workers: int, max_sessions: int, rate: int, hold: int,
                 inject_dtmf: bool):
        self.work, self.rate, self.hold = work, rate, hold
        self.stack = Stack(with_gateway=False, ivr_workers=workers,
                           ivr_max_sessions=max_sessions)
        self.stack.settings = dataclasses.replace(self.stack.settings, rtp_port_min=RTP_BASE,
                                                  rtp_port_max=RTP_BASE + RTP_PORTS - 1)
        if not inject_dtmf:
            self._without_inject_dtmf()
        self.gateway: subprocess.Popen | None = None
        self.offset = 0
        self.ng: Ng | None = None
        self.idle_mem: dict[str, float] = {}

    def _without_inject_dtmf(self) -> None:
        """Kamailio runs a copy of kemi/ whose rtpengine flags lack inject-DTMF (audio is
        then passed through, not transcoded); the product code is not touched."""
        copy = self.work / "kemi-no-inject" / "kemi"
        shutil.copytree(ROOT / "kemi", copy, ignore=shutil.ignore_patterns("__pycache__"))
        calls = copy / "calls.py"
        text = calls.read_text()
        assert " inject-DTMF\"" in text
        calls.write_text(text.replace(" inject-DTMF\"", "\""))
        cfg = tgstack.kamailio_local_cfg
        kamailio = tgstack.kamailio_program

        def local_cfg(s):  # type: ignore[no-untyped-def]
            return cfg(s).replace(str(ROOT / "kemi" / "main.py"), str(copy / "main.py"))

        def program(s):  # type: ignore[no-untyped-def]
            prog = kamailio(s)
            prog.env["PYTHONPATH"] = os.pathsep.join([str(copy.parent), prog.env["PYTHONPATH"]])
            return prog
        tgstack.kamailio_local_cfg = local_cfg
        tgstack.kamailio_program = program

    def start(self) -> None:
        self.stack.start()
        provision(self.stack, self.work)
        s = self.stack.settings
        self.ng = Ng(s.rtpengine_address, s.rtpengine_ng_port)
        logs = self.work / "gateway"
        logs.mkdir(exist_ok=True)
        self.gateway = subprocess.Popen(
            ["sipp", "-sf", str(GATEWAY), "-i", "127.0.0.1", "-p", str(self.stack.gateway_port),
             "-mp", str(media_port()), "-rtp_echo", "-nostdin", "-aa"],
            cwd=logs, stdout=subprocess.DEVNULL, stderr=open(logs / "stderr.log", "wb"),
            start_new_session=True)
        time.sleep(1)
        self.idle_mem = {name: memory_mib(pids) for name, pids in self.groups().items()}

    def stop(self) -> None:
        if self.gateway is not None:
            kill_group(self.gateway)
        if self.ng is not None:
            self.ng.close()
        self.stack.stop()

    def groups(self, callers: list[subprocess.Popen] = ()) -> dict[str, list[int]]:
        st = self.stack
        out = {name: tree(p.pid) for name, p in st.procs.items() if name != "metrics"}
        out["redis"] = tree(st.redis.proc.pid) if st.redis.proc else []
        pidfile = st.pg.data / "postmaster.pid"
        if pidfile.exists():
            out["postgres"] = tree(int(pidfile.read_text().split()[0]))
        if self.gateway is not None:
            out["sipp gateway"] = tree(self.gateway.pid)
        out["sipp callers"] = [p.pid for p in callers]
        return out

    def caller(self, scenario: Path, calls: int, digits: bool, hold_ms: int,
               logs: Path) -> subprocess.Popen:
        logs.mkdir(parents=True, exist_ok=True)
        inf = callers_csv(logs / "callers.csv", calls, self.offset, digits)
        self.offset += calls
        rate = max(1, self.rate / 2)
        args = ["sipp", self.stack.sip_target, "-sf", str(scenario), "-inf", str(inf),
                "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(media_port()),
                "-rtp_echo", "-r", f"{rate:g}", "-m", str(calls), "-l", str(calls),
                "-d", str(hold_ms), "-nostdin", "-aa",
                "-timeout", f"{hold_ms // 1000 + 120}s", "-timeout_error",
                "-trace_stat", "-stf", "stat.csv", "-fd", "5",
                "-trace_rtt", "-rtt_freq", "1", "-trace_err", "-error_file", "errors.log"]
        return subprocess.Popen(args, cwd=logs, stdout=subprocess.DEVNULL,
                                stderr=open(logs / "stderr.log", "wb"), start_new_session=True)

    def step(self, sessions: int, logs: Path) -> Step:
        assert self.ng is not None
        step = Step(sessions, logs=logs, load=Path("/proc/loadavg").read_text().split()[0])
        half = sessions // 2
        menu_calls, pin_calls = sessions - half, half
        step.expected_up = menu_calls + 2 * pin_calls
        ramp = sessions / self.rate
        hold_ms = int((ramp + SETTLE_S + self.hold + SPARE_S) * 1000)
        ivr_marks = {p: p.stat().st_size for p in self.ivr_logs()}
        prober = Prober(self.sip_targets())
        prober.start()
        started = time.monotonic()
        callers = [self.caller(MENU, menu_calls, False, hold_ms, logs / "menu"),
                   self.caller(PIN, pin_calls, True, hold_ms, logs / "pin")]
        hz = os.sysconf("SC_CLK_TCK")
        try:
            groups = self.groups(callers)
            ramp_ticks = cpu_ticks(groups)
            time.sleep(max(0.0, started + ramp + SETTLE_S - time.monotonic()))
            ramp_after = cpu_ticks(groups)
            step.ramp_cpu = {k: (ramp_after[k] - ramp_ticks[k]) / hz /
                             (time.monotonic() - started) for k in groups}
            packets = self.ng.rtp_packets()
            step.ng_answered = packets is not None
            packets = packets or {}
            step.up_start = len({call for call, _, _ in packets})
            ivr_pids = [pid for name, pids in groups.items() if name.startswith("ivr-")
                        for pid in pids]
            ticks, busy, threads = cpu_ticks(groups), machine_busy(), thread_ticks(ivr_pids)
            window = time.monotonic()
            time.sleep(self.hold)
            elapsed = time.monotonic() - window
            after, busy_after = cpu_ticks(groups), machine_busy()
            step.options_ms = prober.stop()
            step.mem = {name: memory_mib(pids) for name, pids in groups.items()}
            step.cpu = {k: (after[k] - ticks[k]) / hz / elapsed for k in groups}
            step.ivr_threads = {k: (v - threads.get(k, 0)) / hz / elapsed
                                for k, v in thread_ticks(ivr_pids).items()}
            ours = sum(after[k] - ticks[k] for k in groups)
            step.other_cores = max(0, (busy_after[0] - busy[0]) - ours) / hz / elapsed
            end = self.ng.rtp_packets()
            step.ng_answered = step.ng_answered and end is not None
            end = end or {}
            step.up_end = len({call for call, _, _ in end})
            step.streams = len(packets)
            step.silent = [key for key, n in packets.items() if end.get(key, n) <= n]
            step.query_s = time.monotonic() - window - elapsed
            for proc in callers:
                proc.wait(timeout=hold_ms / 1000 + 180)
        finally:
            prober.stop()
            for proc in callers:
                if proc.poll() is None:
                    kill_group(proc)
        for sub in ("menu", "pin"):
            stat = last_stat(logs / sub / "stat.csv")
            step.ok += int(stat.get("SuccessfulCall(C)", 0))
            step.failed += int(stat.get("FailedCall(C)", 0))
            step.retrans += int(stat.get("Retransmissions(C)", 0))
            step.setup_ms += rtt_ms(logs / sub)
        step.calls = menu_calls + pin_calls
        for proc in callers:
            if proc.returncode not in (0, None) and step.failed == 0:
                step.failed = max(1, step.calls - step.ok)
        text = "".join(read_from(p, ivr_marks.get(p, 0)) for p in self.ivr_logs())
        step.bridged = text.count("BRIDGE: audio flows both ways")
        step.bridge_ms = bridge_delays(text)
        step.ivr_errors = sum(1 for line in text.splitlines() if " ERROR " in line)
        self.settle()
        return step

    def sip_targets(self) -> dict[str, tuple[str, int]]:
        s = self.stack.settings
        targets = {f"ivr-{i}": (s.ivr_address, s.ivr_sip_port + i) for i in range(s.ivr_workers)}
        targets["kamailio"] = (s.sip_address, s.sip_port)
        return targets

    def ivr_logs(self) -> list[Path]:
        return sorted(self.stack.dir.glob("ivr-*.log"))

    def settle(self) -> None:
        """Every call of the step gone from rtpengine and billed."""
        assert self.ng is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if not self.ng.calls():
                    break
            except TimeoutError:
                pass
            time.sleep(1)
        drained(self.stack)


def last_stat(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    rows = list(csv.DictReader(path.open(), delimiter=";"))
    return rows[-1] if rows else {}


def rtt_ms(logs: Path) -> list[float]:
    """Setup times (first INVITE -> 200 from the IVR, with the 407 round trip) from
    sipp's -trace_rtt file."""
    out = []
    for path in logs.glob("*_rtt.csv"):
        for row in csv.reader(path.open(), delimiter=";"):
            if len(row) >= 3 and row[0].replace(".", "", 1).isdigit():
                out.append(float(row[1]))
    return out


def read_from(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \S+ \[([^\]]+)\] "
                   r"(CODE: valid|BRIDGE: audio flows)")


def bridge_delays(text: str) -> list[float]:
    """Per bridged caller: the valid code -> audio bridged to the answered toll leg, ms
    (the toll leg's INVITE through Kamailio and rtpengine to the gateway and back)."""
    valid: dict[str, float] = {}
    out = []
    for line in text.splitlines():
        found = _LINE.match(line)
        if found is None:
            continue
        when = time.mktime(time.strptime(found.group(1), "%Y-%m-%d %H:%M:%S")) + \
            int(found.group(2)) / 1000
        if found.group(4).startswith("CODE"):
            valid[found.group(3)] = when
        elif found.group(3) in valid:
            out.append((when - valid.pop(found.group(3))) * 1000)
    return out


def party(tag: bytes) -> str:
    """Whose side of an rtpengine call a tag is: sipp's callers tag SIPpTag00<n>, the
    gateway SIPpTag01<n>, pjsua (the IVR) a UUID."""
    return "caller" if b"SIPpTag00" in tag else "gateway" if b"SIPpTag01" in tag else "ivr"


def report_step(step: Step) -> None:
    who = collections.Counter(party(tag) for _, tag, _ in step.silent)
    silent = f" ({', '.join(f'{k} {v}' for k, v in sorted(who.items()))})" if who else ""
    cpu = ", ".join(f"{k} {v * 100:.0f}%" for k, v in sorted(step.cpu.items(),
                                                            key=lambda kv: -kv[1]) if v >= 0.01)
    print(f"  {step.sessions:4d} sessions: {step.ok}/{step.calls} calls ok, {step.failed} failed, "
          f"{step.retrans} retransmissions; in rtpengine {step.up_start}->{step.up_end} calls "
          f"(want {step.expected_up}), {len(step.silent)}/{step.streams} RTP streams silent"
          f"{silent}; "
          f"{step.bridged} bridged; setup p50 {pct(step.setup_ms, 50):.0f} ms p99 "
          f"{pct(step.setup_ms, 99):.0f} ms; code->bridge p99 {pct(step.bridge_ms, 99):.0f} ms; "
          f"IVR errors {step.ivr_errors}; counters read in {step.query_s:.1f} s"
          f"{'' if step.ng_answered else ' (rtpengine stopped answering ng)'}; "
          f"load {step.load}, others used {step.other_cores * 100:.0f}% -> "
          f"{'CLEAN' if step.clean else 'NOT CLEAN'}",
          flush=True)
    threads = ", ".join(f"{k} {v * 100:.0f}%" for k, v in sorted(step.ivr_threads.items(),
                                                                key=lambda kv: -kv[1]))
    ramp = ", ".join(f"{k} {v * 100:.0f}%" for k, v in sorted(step.ramp_cpu.items(),
                                                             key=lambda kv: -kv[1]) if v >= 0.01)
    options = ", ".join(f"{k} p50 {pct(v, 50):.0f} max {max(v or [0]):.0f}"
                        for k, v in step.options_ms.items())
    print(f"        CPU (% of one core) held: {cpu}; IVR threads: {threads}", flush=True)
    print(f"        CPU while setting up: {ramp}; OPTIONS ms: {options}", flush=True)


def report(best: Step | None, idle: dict[str, float], steps: list[Step]) -> None:
    print()
    print("step  ok/calls fail  IVR CPU  IVR MiB  rtpengine  kamailio  others  setup p99")
    for s in steps:
        ivr_cpu = sum(v for k, v in s.cpu.items() if k.startswith("ivr-"))
        ivr_mem = sum(v for k, v in s.mem.items() if k.startswith("ivr-"))
        print(f"{s.sessions:4d}  {s.ok:4d}/{s.calls:<4d} {s.failed:4d}  {ivr_cpu * 100:6.0f}%  "
              f"{ivr_mem:7.0f}  {s.cpu.get('rtpengine', 0) * 100:8.0f}%  "
              f"{s.cpu.get('kamailio', 0) * 100:7.0f}%  {s.other_cores * 100:5.0f}%  "
              f"{pct(s.setup_ms, 99):7.0f} ms  {'clean' if s.clean else 'NOT clean'}")
    if best is None:
        print("no step held every session")
        return
    n = best.sessions
    print(f"\nsessions held through the window, no failed call: {n}"
          f"  (target >= 300: {'met' if n >= 300 else 'missed'})")
    for name in sorted(best.cpu, key=lambda k: -best.cpu[k]):
        cores = best.cpu[name]
        mem = best.mem.get(name, 0.0)
        grown = mem - idle.get(name, 0.0)
        print(f"  {name:14s} CPU {cores * 100:5.1f}% of a core = {cores * 1000 / n:6.2f} ms/s "
              f"per session; memory {mem:6.0f} MiB ({grown * 1024 / n:6.0f} KiB per session "
              "over idle)")
    print(f"  setup latency (INVITE -> IVR's 200 via Kamailio, with the 407 round trip): "
          f"p50 {pct(best.setup_ms, 50):.0f} ms, p99 {pct(best.setup_ms, 99):.0f} ms; code -> "
          f"bridged p50 {pct(best.bridge_ms, 50):.0f} ms, p99 {pct(best.bridge_ms, 99):.0f} ms")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench ivr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default=",".join(map(str, STEPS)),
                        help="session counts to try, in order")
    parser.add_argument("--hold", type=int, default=HOLD_S, help="seconds all must stay up")
    parser.add_argument("--rate", type=int, default=RATE, help="new sessions per second")
    parser.add_argument("--workers", type=int, default=1, help="IVR processes")
    parser.add_argument("--max-sessions", type=int, default=500,
                        help="ivr_max_sessions of each IVR process")
    parser.add_argument("--no-inject-dtmf", action="store_true",
                        help="Kamailio asks rtpengine without inject-DTMF (no transcoding)")
    return parser.parse_args(argv)


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: no stray servers


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    work = Path(tempfile.mkdtemp(prefix="bench-ivr-"))
    print(f"logs in {work}; {args.workers} IVR worker(s) of {args.max_sessions} sessions, "
          f"{'without' if args.no_inject_dtmf else 'with'} inject-DTMF, {args.hold} s hold, "
          f"{args.rate} sessions/s", flush=True)
    bench = Bench(work, args.workers, args.max_sessions, args.rate, args.hold,
                  not args.no_inject_dtmf)
    steps: list[Step] = []
    best = None
    try:
        bench.start()
        for sessions in (int(v) for v in args.steps.split(",")):
            for attempt in (1, 2):  # one hiccup of the shared machine is not a limit
                step = bench.step(sessions, work / f"{sessions}-{attempt}")
                report_step(step)
                steps.append(step)
                if step.clean:
                    best = step
                    break
            else:
                break
        report(best, bench.idle_mem, steps)
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
