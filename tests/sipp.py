"""Run sipp scenarios from tests/sipp/ against a stack; keep their logs for failed runs."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port, log_dir

SCENARIOS = Path(__file__).parent / "sipp"


@dataclass
class SippResult:
    returncode: int
    logs: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(scenario: str, target: str, service: str = "", user: str = "", password: str = "",
        calls: int = 1, timeout: int = 15, extra: list[str] | None = None,
        source: str = "127.0.0.1") -> SippResult:
    """Run one client scenario to completion (exit 0 = every call succeeded)."""
    logs = log_dir("sipp-" + scenario)
    args = ["sipp", target, "-sf", str(SCENARIOS / f"{scenario}.xml"), "-i", source,
            "-p", str(free_port()), "-m", str(calls), "-nostdin", "-timeout", f"{timeout}s",
            "-timeout_error", "-trace_err", "-error_file", str(logs / "errors.log"),
            "-trace_msg", "-message_file", str(logs / "messages.log")]
    if service:
        args += ["-s", service]
    if user:
        args += ["-au", user, "-ap", password]
    args += extra or []
    proc = subprocess.run(args, cwd=logs, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=timeout + 30)
    (logs / "stderr.log").write_bytes(proc.stderr)
    return SippResult(proc.returncode, logs)


def uas(port: int, logs: Path, extra: list[str] | None = None,
        scenario: str = "") -> subprocess.Popen:
    """A sipp UAS playing the PSTN gateway: answers every INVITE, runs until stopped
    (the demo gateway's scenario unless another of tests/sipp/ is named)."""
    path = SCENARIOS / f"{scenario}.xml" if scenario else \
        SCENARIOS.parent.parent / "demo" / "gateway-uas.xml"
    args = ["sipp", "-sf", str(path),
            "-i", "127.0.0.1", "-p", str(port), "-nostdin", "-aa",
            "-trace_msg", "-message_file", str(logs / "gateway-messages.log"),
            "-trace_err", "-error_file", str(logs / "gateway-errors.log"), *(extra or [])]
    return subprocess.Popen(args, cwd=logs, stdout=subprocess.DEVNULL,
                            stderr=open(logs / "gateway-stderr.log", "wb"), start_new_session=True)
