"""The security and fault matrix drives the same real stack as the end-to-end scenarios:
Kamailio, rtpengine, the IVR, the xDR writer, Redis and PostgreSQL on free ports, with
pjsua2 phones, sipp and raw sockets from other loopback addresses (127.0.0.2 and up)."""
from tests.e2e.conftest import calls_end, gateway, records, sip, tg  # noqa: F401
