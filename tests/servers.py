"""Real servers for tests: each starts on a free port in a temp dir and stops cleanly.

Logs stay under the test's log folder (printed on failure) so a failed run can be read.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tollgate.stack import postgres_can_reach

PG_BIN = Path("/usr/lib/postgresql/15/bin")
LOG_ROOT = Path(os.environ.get("TOLLGATE_TEST_LOGS", "/tmp/tollgate-test-logs"))


def private_loopback() -> str:
    """A loopback address of its own, 127.100-254.x.y, for an rtpengine. rtpengine binds
    its media ports with SO_REUSEADDR, so any other process doing the same on this host (a
    second stack, another checkout's test run with the same port ranges) could bind one
    of our ports on 127.0.0.1 and silently take the call's audio; an exact address of our
    own always wins over theirs. 127.0.0.x stays for the trusted and test sources."""
    import random
    pick = random.SystemRandom()  # not pytest-randomly's seeded module generator
    return f"127.{pick.randint(100, 254)}.{pick.randint(1, 254)}.{pick.randint(1, 254)}"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on now (TCP and UDP both checked for SIP use)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def wait_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def log_dir(name: str) -> Path:
    LOG_ROOT.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=name + "-", dir=LOG_ROOT))


class RedisServer:
    """redis-server on a free port, no persistence unless asked."""

    def __init__(self, port: int | None = None, appendonly: bool = False):
        self.port = port or free_port()
        self.dir = log_dir("redis")
        self.appendonly = appendonly
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "", "--daemonize", "no",
                "--logfile", str(self.dir / "redis.log"),
                "--appendonly", "yes" if self.appendonly else "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class PostgresServer:
    """A private PostgreSQL 15 cluster owned by the postgres user (it refuses root)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.dir = _postgres_log_dir()
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.user = "tollgate"
        self.database = "tollgate"

    def _as_owner(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def start(self) -> "PostgresServer":
        self.sock.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.sock, "postgres")
        if not self.data.exists():
            subprocess.run(self._as_owner(str(PG_BIN / "initdb"), "-D", str(self.data),
                                          "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                          "--no-sync"),
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._ctl("start", "-w", "-o",
                  f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                  f"-c synchronous_commit=off -c full_page_writes=off")
        if not getattr(self, "_created", False):
            self.psql(f"CREATE ROLE {self.user} LOGIN SUPERUSER")
            self.psql(f"CREATE DATABASE {self.database} OWNER {self.user}")
            self._created = True
        return self

    def _ctl(self, *args: str) -> None:
        subprocess.run(self._as_owner(str(PG_BIN / "pg_ctl"), "-D", str(self.data),
                                      "-l", str(self.dir / "postgres.log"), *args),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def psql(self, sql: str, database: str = "postgres") -> None:
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
                       check=True, stdout=subprocess.DEVNULL)

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("stop", "-m", mode, "-w")

    def discard(self) -> None:
        """Stop for good and remove the data directory, keeping postgres.log: a test run
        starts dozens of clusters, and their data would fill the disk run after run."""
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)

    def dsn(self, database: str | None = None) -> str:
        return (f"host=127.0.0.1 port={self.port} user={self.user} "
                f"dbname={database or self.database}")

    def fresh_database(self, name: str) -> str:
        """An empty database for one test module; returns its DSN."""
        self.psql(f"DROP DATABASE IF EXISTS {name}")
        self.psql(f"CREATE DATABASE {name} OWNER {self.user}")
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop a test's database, closing what a test left connected (a writer, a pool)."""
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def link_prompts(dest: Path) -> None:
    """The run's synthesized prompts under `dest`, hard-linked where the disk allows: a
    stack only reads them, and forty copies of 27 MB per run add up."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    shutil.copytree(LOG_ROOT / "prompts", dest, dirs_exist_ok=True, copy_function=link)


def _postgres_log_dir() -> Path:
    """log_dir("pg"), unless the postgres user cannot reach LOG_ROOT (TOLLGATE_TEST_LOGS
    under a 0700 home): then a folder of its own in /tmp."""
    LOG_ROOT.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or postgres_can_reach(LOG_ROOT):
        return log_dir("pg")
    return Path(tempfile.mkdtemp(prefix="tollgate-test-pg-", dir="/tmp"))


def kill_group(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a process started with start_new_session=True and everything it forked."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


class RedisReplica(RedisServer):
    """redis-server replicating `master_port` (or a master itself with master_port=None),
    announcing 127.0.0.1 so the sentinels and clients reach it by that address."""

    def __init__(self, master_port: int | None, port: int | None = None):
        super().__init__(port)
        self.master_port = master_port

    def start(self) -> "RedisReplica":
        conf = self.dir / "redis.conf"
        lines = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.dir}", 'save ""',
                 "daemonize no", f"logfile {self.dir / 'redis.log'}", "appendonly no",
                 "replica-announce-ip 127.0.0.1", "repl-diskless-sync yes",
                 "repl-diskless-sync-delay 0"]
        if self.master_port is not None:
            lines.append(f"replicaof 127.0.0.1 {self.master_port}")
        # a config file, not flags: a sentinel rewrites it when it turns this one around
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(["redis-server", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def kill(self) -> None:
        """SIGKILL: the master dies without a word to anyone (a crash, a lost host)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


class SentinelSet:
    """A master, its replicas and three `redis-server --sentinel` watching them, each a
    real process on a free port with its config under one log folder. Failure is noticed
    after down_after_ms; `kill_master()` and `wait_failover()` drive a failover."""

    def __init__(self, replicas: int = 2, sentinels: int = 3, name: str = "tollgate",
                 down_after_ms: int = 1000, failover_timeout_ms: int = 3000):
        self.name, self.down_after_ms = name, down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.master = RedisReplica(None)
        self.replicas = [RedisReplica(self.master.port) for _ in range(replicas)]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.dir = log_dir("sentinels")
        self.procs: list[subprocess.Popen] = []

    @property
    def servers(self) -> list[RedisReplica]:
        return [self.master, *self.replicas]

    @property
    def addresses(self) -> str:
        """The redis_sentinels setting."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> "SentinelSet":
        import redis
        self.master.start()
        for replica in self.replicas:
            replica.start()
        quorum = len(self.sentinel_ports) // 2 + 1
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text("\n".join([
                f"port {port}", "bind 127.0.0.1", "daemonize no", f"dir {self.dir}",
                f"logfile {self.dir / f'sentinel-{port}.log'}",
                "sentinel resolve-hostnames no", "sentinel announce-ip 127.0.0.1",
                f"sentinel monitor {self.name} 127.0.0.1 {self.master.port} {quorum}",
                f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}",
                f"sentinel failover-timeout {self.name} {self.failover_timeout_ms}",
                f"sentinel parallel-syncs {self.name} {len(self.replicas)}"]) + "\n")
            self.procs.append(subprocess.Popen(["redis-server", str(conf), "--sentinel"],
                                               stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
        for port in self.sentinel_ports:
            wait_port(port)
        # ready when every sentinel knows every replica and the other sentinels (before
        # that a failover could not pick a replica, or reach a quorum)
        others = len(self.sentinel_ports) - 1
        for port in self.sentinel_ports:
            with redis.Redis(port=port, socket_timeout=2) as sentinel:
                self._wait(lambda s=sentinel: (
                    len(s.sentinel_slaves(self.name)) == len(self.replicas)
                    and int(s.sentinel_master(self.name)["num-other-sentinels"]) == others),
                    30, f"sentinel {port} to see the replicas and the other sentinels")
        return self

    def master_port(self, sentinel_port: int | None = None) -> int:
        """The master's port as one sentinel (default the first) names it now."""
        import redis
        with redis.Redis(port=sentinel_port or self.sentinel_ports[0],
                         socket_timeout=2) as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(self.name)
        return int(port)

    def kill_master(self) -> int:
        """SIGKILL the current master; returns the port it had."""
        port = self.master_port()
        server = next(s for s in self.servers if s.port == port)
        server.kill()
        return port

    def wait_failover(self, old_port: int, timeout: float = 60.0) -> int:
        """Wait until every sentinel names a new master and that server says it is one;
        returns its port."""
        import redis

        def switched() -> bool:
            ports = {self.master_port(p) for p in self.sentinel_ports}
            if len(ports) != 1 or old_port in ports:
                return False
            with redis.Redis(port=ports.pop(), socket_timeout=2) as new:
                return bool(new.info("replication")["role"] == "master")
        self._wait(switched, timeout, f"a master other than {old_port}")
        return self.master_port()

    @staticmethod
    def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        import redis
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {what}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs = []
        for server in self.servers:
            server.stop()
