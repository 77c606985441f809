"""Names shared with kamailio.cfg and between route steps: flags (#!define lines), htable,
AVP and dialog-variable names, route names, refusal reasons. Nothing else in kemi/ spells
one of them (tests/unit/test_kemi_constants.py checks both)."""

EXIT = -255          # a route step returning EXIT ends the request route

# message flags; kamailio.cfg defines the same numbers (checked by a unit test)
FLT_DIALOG = 4       # dialog module tracks this call
FLT_FROM_IVR = 6     # the request came from the IVR with a valid signature
FLB_NATB = 7         # branch flag: contact behind NAT

# htables; kamailio.cfg declares them with these names
HT_IPBAN = "ipban"         # source IP -> 1 while banned (autoexpire)
HT_AUTHFAIL = "authfail"   # source IP -> failed authentications in the window

# transaction AVPs of a call sent to the IVR (read again in failure and branch routes)
AVP_IVR_FIRST = "$avp(tg_ivr_first)"      # the worker tried first
AVP_IVR_TRIES = "$avp(tg_ivr_tries)"      # workers tried so far
AVP_IVR_USER = "$avp(tg_ivr_user)"        # the number dialed
AVP_IVR_ACCOUNT = "$avp(tg_ivr_account)"  # the calling account
AVP_IVR_SESSION = "$avp(tg_ivr_session)"  # the session ID of the call's legs
AVP_IVR_APP = "$avp(tg_ivr_app)"          # the voice application
AVP_IVR_ANI = "$avp(tg_ivr_ani)"          # the caller's number (calls to access numbers)
AVP_MEDIA_SET = "$avp(tg_media_set)"      # the call's rtpengine set (kamailio.cfg setid_avp)
AVP_IVR_NOTIFY = "$avp(tg_ivr_notify)"    # a refusal the IVR explains: "<code>;<locution>;<reason>"
# transaction AVPs of a call in forwarded to follow-me numbers (kemi/forwarding.py)
AVP_FM_ACCOUNT = "$avp(tg_fm_account)"    # the DID account that forwards
AVP_FM_NEXT = "$avp(tg_fm_next)"          # index of the next follow-me number to try
AVP_VM_ACCOUNT = "$avp(tg_vm_account)"    # unanswered, the call goes to this voicemail

# route functions of kemi.router.Router that Kamailio calls by name
ROUTE_ONREPLY = "ksr_onreply_manage"
ROUTE_FAILURE = "ksr_failure_manage"
ROUTE_BRANCH_IVR = "ksr_branch_ivr"
ROUTE_BRANCH_FOLLOW_ME = "ksr_branch_follow_me"
ROUTE_TIMEOUT = "dialog:timeout"   # the dialog event a capped call's timeout runs


# the packed fields of a call's context (kemi.callvars)
DLG_ANSWERED = (3, 4)      # dialog states: answered (no ACK yet), confirmed
DLG_CONTEXT = "$dlg_var(ctx)"


def dlg_var(name: str) -> str:
    """The pseudo-variable of one of DLG_VARS."""
    assert name in DLG_VARS, name
    return f"$dlg_var({name})"


# dialog variables that carry a call's billing context to its end event
DLG_VARS = ("payer", "customer", "leg", "session", "cli", "cld", "access_code", "setup_ts",
            "connect_ts", "reserved", "max_duration", "cap_before", "slot", "media_set",
            "recorded", "dtmf", "keys_watched", "final_code",
            "final_reason", "forwarded", "in_leg", "in_payer", "in_customer", "in_cli",
            "in_access_code", "caller_ip")

# legs of a call, as xDRs name them
LEG_IVR, LEG_TOLL, LEG_ONNET, LEG_OUT, LEG_IN = "ivr", "toll", "onnet", "out", "in"
ACCESS_INCOMING = "IN"  # the seeds' access code of incoming legs (the IVR leg, PSTN calls in)

# refusal reasons (Prometheus label values and SIP reason phrases)
REASON_AUTH = "Authentication failed"
REASON_BANNED = "Too many failures"
REASON_IVR_DOWN = "IVR unavailable"
REASON_IVR_FULL = "IVR capacity reached"
REASON_NO_DIALOG = "Call/Transaction Does Not Exist"
REASON_SIGNATURE = "Invalid internal signature"
