"""Layered settings: TOLLGATE_* environment over a TOML file over defaults.

The file is $TOLLGATE_CONFIG, else ./tollgate.toml, else /etc/tollgate/tollgate.toml.
Every key below can be set as TOLLGATE_<KEY> (upper case) in the environment.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    # where SIP (Kamailio) listens
    sip_address: str = "127.0.0.1"
    sip_port: int = 5060
    sip_domain: str = "tollgate.local"
    # IVR media server
    ivr_address: str = "127.0.0.1"
    ivr_sip_port: int = 5080
    ivr_media_port: int = 40000
    # IVR worker processes: worker i listens on ivr_sip_port + i, media from
    # ivr_media_port + 2000 * i; the second is there for failover
    ivr_workers: int = 2
    # callers one IVR worker takes at once (pjsua2 built from third_party/: 300 measured
    # on 2 cores with the whole stack, ivr/README.md)
    ivr_max_sessions: int = 300
    # seconds Kamailio waits for an IVR worker's first answer before trying the next
    # (and, after the last, refusing the call 503 "IVR unavailable")
    ivr_answer_timeout: int = 2
    # rtpengine
    rtpengine_address: str = "127.0.0.1"
    rtpengine_ng_port: int = 2223
    # UDP port of this node's recording-keys listener, where rtpengine reports RFC 4733
    # digits (--dtmf-log-dest) so a client's recording code keyed mid-call starts recording
    dtmf_events_port: int = 2230
    # rtpengine's syslog level: 5 notice (calls created and deleted), 6 info (each offer,
    # answer and delete, and each peer address it confirms: where one-way audio is found)
    rtpengine_log_level: int = 5
    rtp_port_min: int = 30000
    rtp_port_max: int = 30999
    # PSTN gateway the toll and toll-free calls leave through (host:port)
    pstn_gateway: str = "127.0.0.1:5070"
    # Redis
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_db: int = 0
    redis_timeout_ms: int = 200
    # Redis Sentinel (docs/REDIS_HA.md): "host:port,host:port" of the sentinels; empty:
    # no Sentinel, the master is redis_host:redis_port. Set: every process asks the
    # sentinels for the master of redis_master_name and follows a failover
    redis_sentinels: str = ""
    redis_master_name: str = "tollgate"
    # with sentinels: an xDR event is acknowledged once this many replicas hold it (WAIT),
    # waiting at most redis_replica_wait_ms; else a copy goes to the local spool too, so a
    # failover cannot lose it (0: do not wait)
    redis_replica_acks: int = 1
    redis_replica_wait_ms: int = 50
    # PostgreSQL
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "tollgate"
    pg_database: str = "tollgate"
    pg_password: str = ""
    # Prometheus /metrics
    metrics_port: int = 9090
    # runtime state (PostgreSQL cluster, logs, spool, prompts, secret)
    var_dir: str = "var"
    # HMAC key for internal headers between the IVR and Kamailio; empty: read var/secret
    internal_secret: str = ""
    # lifetime of a signed internal header, seconds
    internal_header_ttl: int = 60
    # per-process cache
    cache_size: int = 100000
    cache_ttl: int = 300
    cache_negative_ttl: int = 30
    # longest call authorized, seconds (caps each call's reservation too)
    max_call_duration: int = 7200
    # Kamailio worker processes
    sip_children: int = 4
    # a cluster of Kamailio + IVR nodes sharing Redis and PostgreSQL (docs/NODES.md).
    # This node's name, in its xDR events and logs; empty: "kamailio"
    node_name: str = ""
    # this node's number in the cluster, 1 to 63: the dialogs it makes get ids no other
    # node makes (Kamailio's dialog h_id_start); 0 outside a cluster
    node_id: int = 0
    # where this node's DMQ listens for the other nodes (host:port, UDP, a socket of its
    # own); empty: no DMQ, a single node
    dmq_listen: str = ""
    # the DMQ addresses (host:port) of the other nodes, space-separated: the only sources
    # whose KDMQ requests are taken, and the nodes this one joins at start
    dmq_peers: str = ""
    # the SIP addresses (host:port) of the other nodes, space-separated: a request routed
    # to one of them (its Record-Route) is taken here as routed to this node, so a call
    # set up on one node can be ended on another
    sip_peers: str = ""
    # GeoIP country database (MaxMind format) of the virtual PBX source filter; empty:
    # <var_dir>/geoip/dbip-country.mmdb, which `make` installs (tollgate/geoip.py)
    geoip_database: str = ""
    # media relay sets (tollgate/media.py): "name=host:port host:port;name2=host:port", the
    # rtpengine instances of each set a client may be given; the instance above is the
    # default set of every other call
    media_relay_sets: str = ""
    # SMTP relay for operator e-mails (a client's max daily usage reached); an empty host
    # sends none and logs each one instead
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "tollgate@localhost"
    smtp_user: str = ""
    smtp_password: str = ""
    # STARTTLS before authenticating (the relay must offer it)
    smtp_starttls: bool = False
    smtp_timeout: int = 10

    @property
    def pg_dsn(self) -> str:
        parts = [f"host={self.pg_host}", f"port={self.pg_port}",
                 f"user={self.pg_user}", f"dbname={self.pg_database}"]
        if self.pg_password:
            parts.append(f"password={self.pg_password}")
        return " ".join(parts)

    @property
    def ivr_signature_ttl(self) -> float:
        """Lifetime of the signature on a call sent to one IVR worker: the time Kamailio
        waits for that worker. A worker that wakes up later must not answer a caller who
        has moved on (to the next worker, or away), so it refuses the stale INVITE."""
        return float(self.ivr_answer_timeout)

    @property
    def var_path(self) -> Path:
        return Path(self.var_dir).resolve()

    @property
    def geoip_path(self) -> Path:
        return Path(self.geoip_database) if self.geoip_database else (
            self.var_path / "geoip" / "dbip-country.mmdb")

    def secret(self) -> bytes:
        """The internal-header HMAC key: setting, else var/secret (created once)."""
        if self.internal_secret:
            return self.internal_secret.encode()
        path = self.var_path / "secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(os.urandom(32).hex())
        return path.read_text().strip().encode()


def _config_file() -> Path | None:
    explicit = os.environ.get("TOLLGATE_CONFIG")
    if explicit:
        return Path(explicit)
    for candidate in (Path("tollgate.toml"), Path("/etc/tollgate/tollgate.toml")):
        if candidate.exists():
            return candidate
    return None


def _coerce(name: str, kind: type, raw: object) -> object:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"setting {name}: {raw!r} is not true or false")
    if kind is int:
        try:
            return int(raw)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise ValueError(f"setting {name}: {raw!r} is not a whole number") from None
    return str(raw)


def load(**overrides: object) -> Settings:
    """Settings from defaults, the config file, TOLLGATE_* variables, then overrides."""
    values: dict[str, object] = {}
    path = _config_file()
    if path is not None:
        if not path.exists():
            raise ValueError(f"config file {path} does not exist")
        with path.open("rb") as f:
            values.update(tomllib.load(f))
    known = {f.name: f for f in fields(Settings)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"config file {path}: unknown setting {sorted(unknown)[0]}")
    for name in known:
        env = os.environ.get("TOLLGATE_" + name.upper())
        if env is not None:
            values[name] = env
    values.update(overrides)
    typed = {n: _coerce(n, type(known[n].default), v) for n, v in values.items()}
    for name in _AT_LEAST_ONE:
        if name in typed and int(typed[name]) < 1:  # type: ignore[call-overload]
            raise ValueError(f"setting {name}: must be at least 1, not {typed[name]!r}")
    settings = Settings(**typed)  # type: ignore[arg-type]
    if settings.redis_replica_wait_ms >= settings.redis_timeout_ms:
        # the IVR's emits share the routing path's socket: a WAIT that outlasts it would
        # time out every xDR event (each one then stalls, and goes to the spool)
        raise ValueError(f"setting redis_replica_wait_ms: {settings.redis_replica_wait_ms} "
                         f"must be below redis_timeout_ms ({settings.redis_timeout_ms})")
    return settings


# a zero here would mean "no limit" to the code that reads it, or nothing would work
_AT_LEAST_ONE = ("max_call_duration", "ivr_answer_timeout", "ivr_workers", "ivr_max_sessions",
                 "sip_children", "internal_header_ttl")
