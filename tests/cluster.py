"""Two tollgate nodes for end-to-end tests (docs/NODES.md): node A is a whole Stack
(Redis, PostgreSQL, rtpengine, the xDR writer, its IVR and Kamailio); node B is a second
Kamailio + IVR pair on a loopback address of its own, sharing A's Redis, PostgreSQL,
rtpengine and xDR writer. The two Kamailios replicate their bans, failed-auth counters
and dialogs over DMQ, each on a socket of its own, and take each other's SIP address as
their own (a call set up on one can be ended on the other).
"""
from __future__ import annotations

import subprocess
from dataclasses import replace

from tests.records import wait_until
from tests.servers import free_port, link_prompts, private_loopback
from tests.stack import Stack, _free_range, wait_sip
from tollgate import stack
from tollgate.config import Settings

NODE_A, NODE_B = "a", "b"


class Cluster:
    """Node A (`self.a`, a tests.stack.Stack) and node B (settings `self.b`), started and
    stopped together; B's programs run under A's stack as b-kamailio, b-ivr-0, ..."""

    def __init__(self) -> None:
        self.b_address = private_loopback()
        self.b_sip_port, self.b_dmq_port, a_dmq_port = free_port(), free_port(), free_port()
        self.a = Stack(with_gateway=False, node_name=NODE_A, node_id=1,
                       dmq_listen=f"127.0.0.1:{a_dmq_port}",
                       dmq_peers=f"{self.b_address}:{self.b_dmq_port}",
                       sip_peers=f"{self.b_address}:{self.b_sip_port}")
        self.b: Settings = self.a.settings

    def start(self) -> "Cluster":
        self.a.start()
        try:
            self._start_b()
        except BaseException:
            self.a.stop()
            raise
        return self

    def _start_b(self) -> None:
        a = self.a.settings
        self.b = replace(
            a, node_name=NODE_B, node_id=2, var_dir=str(self.a.dir / "var-b"),
            sip_address=self.b_address, sip_port=self.b_sip_port,
            ivr_address=self.b_address, ivr_sip_port=free_port(),
            ivr_media_port=_free_range(21000, 22000), metrics_port=free_port(),
            geoip_database=str(a.geoip_path),
            dmq_listen=f"{self.b_address}:{self.b_dmq_port}", dmq_peers=a.dmq_listen,
            sip_peers=f"{a.sip_address}:{a.sip_port}")
        stack.prepare(self.b)
        link_prompts(self.b.var_path / "prompts")
        for prog in stack.programs(self.b):
            if prog.name.startswith("ivr-") or prog.name == "kamailio":
                self.a.start_program(replace(prog, name=f"{NODE_B}-{prog.name}"))
        if not wait_sip(self.b.sip_address, self.b.sip_port):
            raise RuntimeError(f"node B did not answer OPTIONS; logs in {self.a.dir}")
        self.joined()

    def joined(self) -> None:
        """Wait until each node has the other as an active DMQ peer."""
        for node, peer in ((NODE_A, self.b.dmq_listen), (NODE_B, self.a.settings.dmq_listen)):
            wait_until(lambda: peer in self.dmq_peers(node), 60,
                       f"node {node} seeing its DMQ peer {peer}", every=0.5)

    def kill_kamailio(self, node: str) -> None:
        """SIGKILL a node's Kamailio: the node dies, its calls' media and the rest stay."""
        self.a.kill_program("kamailio" if node == NODE_A else f"{NODE_B}-kamailio")

    def restart_kamailio_a(self) -> None:
        """Node A's Kamailio again (after kill_kamailio), back in the cluster."""
        self.a.restart("kamailio")
        s = self.a.settings
        if not wait_sip(s.sip_address, s.sip_port):
            raise RuntimeError(f"node A did not come back; logs in {self.a.dir}")
        self.joined()

    def stop(self) -> None:
        self.a.stop()

    def settings(self, node: str) -> Settings:
        return self.a.settings if node == NODE_A else self.b

    def target(self, node: str) -> str:
        """host:port of a node's SIP socket."""
        s = self.settings(node)
        return f"{s.sip_address}:{s.sip_port}"

    def ctl(self, node: str) -> str:
        """A node's Kamailio control socket, for kamcmd."""
        return f"unix:{self.settings(node).var_path / 'run' / 'kamailio_ctl'}"

    def log(self, node: str) -> str:
        return self.a.log("kamailio" if node == NODE_A else f"{NODE_B}-kamailio")

    def dmq_peers(self, node: str) -> set[str]:
        """host:port of the other DMQ nodes a node has active."""
        found = set()
        for block in kamcmd(self.ctl(node), "dmq.list_nodes").split("}"):
            fields = dict(line.strip().split(": ", 1) for line in block.splitlines()
                          if ": " in line)
            if fields.get("status") == "active" and fields.get("local") == "0":
                found.add(f"{fields.get('host')}:{fields.get('port')}")
        return found

    def dialog_states(self, node: str, call_id: str) -> list[int]:
        """The states of the dialogs a node holds for a Call-ID (4 confirmed, 5 deleted)."""
        out = kamcmd(self.ctl(node), "dlg.list_match", "callid", "eq", call_id)
        return [int(line.split(":", 1)[1]) for line in out.splitlines()
                if line.strip().startswith("state:")]

    def htable(self, node: str, table: str, key: str) -> str:
        """A node's htable entry ("" when it has none)."""
        out = kamcmd(self.ctl(node), "htable.get", table, key)
        values = [line.split(":", 1)[1].strip() for line in out.splitlines()
                  if line.strip().startswith("value:")]
        return values[0] if values else ""


class NodeB:
    """Node B seen as tests/calls.py's helpers see a stack: its settings, SIP target and
    logs (\"ivr\" joins B's IVR workers' logs)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    @property
    def settings(self) -> Settings:
        return self.cluster.b

    @property
    def sip_target(self) -> str:
        return self.cluster.target(NODE_B)

    def log(self, name: str) -> str:
        return self.cluster.a.log(f"{NODE_B}-{name}")


def kamcmd(ctl: str, *args: str) -> str:
    proc = subprocess.run(["kamcmd", "-s", ctl, *args], capture_output=True, text=True,
                          timeout=10)
    return proc.stdout + proc.stderr
