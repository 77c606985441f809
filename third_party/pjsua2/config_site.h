/* tollgate's pjlib/include/pj/config_site.h: PJSIP 2.15.1 for an IVR media server that
 * holds hundreds of calls in one process. The PyPI pjsua2-python wheels keep the
 * defaults (PJSUA_MAX_CALLS 4): one IVR process could hold 2 callers.
 * Copied into the source tree by third_party/pjsua2/build.sh. */

/* Calls per process: each IVR session takes 2 (the caller's leg and the toll leg).
 * UaConfig.maxCalls at run time may ask for less, never more. */
#define PJSUA_MAX_CALLS                 1024

/* Every call holds an RTP and an RTCP socket on the one ioqueue, next to the SIP
 * transports: the default 64 silently caps a build at ~32 calls. Built with
 * --enable-epoll, so fds >= 1024 are fine (select() could not watch them). */
#define PJ_IOQUEUE_MAX_HANDLES          4096
#define PJ_IOQUEUE_MAX_EVENTS_IN_SINGLE_POLL 64

/* Conference bridge slots: one per call plus one per prompt player, recorder or tone.
 * MediaConfig.maxMediaPorts must be raised at run time as well. */
#define PJSUA_MAX_CONF_PORTS            (3 * PJSUA_MAX_CALLS)
#define PJSUA_MAX_PLAYERS               PJSUA_MAX_CALLS
#define PJSUA_MAX_RECORDERS             PJSUA_MAX_CALLS

/* SIP state: a call has an INVITE dialog plus in-flight transactions (INVITE, ACK,
 * BYE, INFO, re-INVITE), and ended transactions linger for timer J/K. */
#define PJSIP_MAX_TSX_COUNT             (16 * 1024 - 1)
#define PJSIP_MAX_DIALOG_COUNT          (4 * 1024 - 1)

/* No video (configure --disable-video too); sound is the null device (--disable-sound). */
#define PJMEDIA_HAS_VIDEO               0

/* RFC 3261 8.2.2.2 merged requests: pjsua answers 482 to an INVITE whose From tag,
 * Call-ID and CSeq match a transaction it still holds. A proxy's serial forking (the
 * follow-me numbers of a forwarded call, all through the one PSTN gateway) sends exactly
 * that, a moment after the previous number refused; gateways in the field take each as
 * the new call it is, and so must the test gateway. The IVR never sees one: its INVITEs
 * come from Kamailio one worker at a time, and a replayed signature is refused anyway. */
#define PJSUA_DETECT_MERGED_REQUESTS    0
