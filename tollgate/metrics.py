"""Prometheus metrics shared by Kamailio workers, the IVR and the xDR writer.

Kamailio runs many worker processes, so counters use prometheus_client's multiprocess
mode: each process writes under $PROMETHEUS_MULTIPROC_DIR and `tollgate.metrics_server`
aggregates them on /metrics.
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge

CALLS = Counter("tollgate_calls_total", "INVITEs routed, by outcome", ["outcome"])
REFUSALS = Counter("tollgate_refusals_total", "Requests refused, by SIP code and reason",
                   ["code", "reason"])
REGISTRATIONS = Counter("tollgate_registrations_total", "REGISTER results", ["result"])
CACHE = Counter("tollgate_cache_total", "Record cache lookups, by result (hit, miss, ...)",
                ["result"])
TARIFFS = Counter("tollgate_tariff_tables_total",
                  "Rate tables in memory: read (a worker read a tariff from Redis), "
                  "prefix_changed (one prefix re-read in place)", ["event"])
XDR_EVENTS = Counter("tollgate_xdr_events_total", "xDR events emitted, by destination",
                     ["sink"])
MEDIA_FAILURES = Counter("tollgate_media_failures_total",
                         "SDP rtpengine did not take, by side (offer, answer): a call whose "
                         "audio would not go through the media relay", ["side"])
LATE_ANSWERS = Counter("tollgate_late_answers_total",
                       "2xx a callee resent after the INVITE's transaction was gone, relayed to "
                       "a caller whose ACK was lost (RFC 6026)")
FOLLOW_ME = Counter("tollgate_follow_me_total",
                    "Follow-me numbers of forwarded calls in, by outcome (branch: rung, loop: "
                    "skipped as it would come back, refused: not billable, exhausted: none "
                    "left)", ["outcome"])
ACTIVE_CALLS = Gauge("tollgate_active_calls", "Calls in progress (per worker, summed)",
                     multiprocess_mode="livesum")
VOICEMAIL_CALLS = Counter("tollgate_voicemail_calls_total",
                          "Calls sent to voicemail, by application (vm-deposit, vm-access)",
                          ["app"])
MWI = Counter("tollgate_mwi_notifies_total",
              "Message-waiting NOTIFYs forked to an account's registered phones")
