"""Prometheus counters of the IVR (served by --metrics-port)."""
from prometheus_client import Counter

SESSIONS = Counter("ivr_sessions_total", "Calls the IVR accepted and answered")
CODE_ATTEMPTS = Counter("ivr_code_attempts_total", "Authorization code attempts", ["result"])
TOLL_LEGS = Counter("ivr_toll_legs_total", "Toll legs originated, by final SIP code", ["code"])
