"""Prometheus metrics of the IVR (served by --metrics-port)."""
from prometheus_client import Counter, Gauge

SESSIONS = Counter("ivr_sessions_total", "Calls the IVR accepted and answered")
APP_SESSIONS = Counter("ivr_app_sessions_total", "Sessions answered, by application type",
                       ["app"])
ACTIVE = Gauge("ivr_sessions_active", "Sessions in progress")
CODE_ATTEMPTS = Counter("ivr_code_attempts_total", "Authorization code attempts", ["result"])
CARD_LOGINS = Counter("ivr_card_logins_total",
                      "Prepaid card authentications, by method (ani, pin) and result", ["method",
                                                                                       "result"])
VOUCHERS = Counter("ivr_voucher_redemptions_total",
                   "Vouchers keyed in by callers, by result (redeemed, invalid, "
                   "unavailable, locked)",
                   ["result"])
TOLL_LEGS = Counter("ivr_toll_legs_total", "Toll legs originated, by final SIP code", ["code"])
SESSION_XDRS = Counter("ivr_session_xdrs_total",
                       "Session (caller leg) xDRs the IVR emitted, by where they went", ["sink"])
FAULTS = Counter("ivr_faults_total", "Sessions ended by a fault (backend down, bug)", ["error"])
VOICEMAILS = Counter("ivr_voicemails_total",
                     "Voicemail messages, by step (recorded, stored, spooled, replayed, "
                     "emailed, email_failed)", ["step"])
CALLBACKS = Counter("ivr_callbacks_total",
                    "Callback requests and call-backs, by outcome (scheduled, refused, "
                    "placed, failed, capacity)", ["outcome"])
MWI = Counter("ivr_mwi_notifies_total", "Message-waiting NOTIFYs sent to Kamailio")
