"""Names shared with kamailio.cfg (#!define lines) and route return codes."""

EXIT = -255          # a route step returning EXIT ends the request route

# message flags; kamailio.cfg defines the same numbers (checked by a unit test)
FLT_DIALOG = 4       # dialog module tracks this call
FLT_FROM_IVR = 6     # the request came from the IVR with a valid signature
FLB_NATB = 7         # branch flag: contact behind NAT

# dialog variables that carry a call's billing context to its end event
DLG_VARS = ("payer", "customer", "leg", "session", "cli", "cld", "access_code", "setup_ts",
            "connect_ts", "reserved", "max_duration", "final_code", "final_reason")

# refusal reasons (Prometheus label values and SIP reason phrases)
REASON_AUTH = "Authentication failed"
REASON_BANNED = "Too many failures"
REASON_IVR_DOWN = "IVR unavailable"
REASON_IVR_FULL = "IVR capacity reached"
REASON_NO_DIALOG = "Call/Transaction Does Not Exist"
REASON_SIGNATURE = "Invalid internal signature"
