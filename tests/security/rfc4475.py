"""RFC 4475 "SIP Torture Test Messages" as bytes, ready to send to our proxy over UDP.

Each message is the RFC's text with one change: the sent-by of the topmost Via carries
the sender's port (the `PORT` marker), because Kamailio answers a UDP request at the
source address and the *Via's* port (5060 when the Via names none). Request-URIs keep the
RFC's hosts: a proxy takes requests for any domain, and none of these is ever relayed
(nothing here carries credentials). Everything the RFC makes odd stays odd, byte for
byte: 8-bit and control bytes, escaped NULs, folded lines, huge numbers, a binary body.

Lines end in CRLF (RFC 4475 section 2); <allOneLine> and <repeat> blocks are expanded.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

PORT = b"@@PORT@@"   # rendered as ":<port>" of the socket that sends the message

# what the proxy must do with a message
ANSWER = "answer"    # any SIP response (the RFC calls it well formed, or it is one a proxy handles)
REFUSE = "refuse"    # a 4xx, or silence: never a 1xx/2xx/3xx/5xx/6xx
SILENT = "silent"    # a response: nothing comes back to its sender


@dataclass(frozen=True)
class Torture:
    name: str        # the RFC's file name (wsinv, intmeth, ...)
    section: str     # RFC 4475 section
    expect: str      # ANSWER, REFUSE or SILENT
    raw: bytes

    def render(self, port: int) -> bytes:
        """The message as sent from a socket bound to `port`."""
        return self.raw.replace(PORT, b":%d" % port)

    @property
    def is_request(self) -> bool:
        return not self.raw.startswith(b"SIP/2.0 ")


def _crlf(text: str) -> bytes:
    """Text whose characters are all below 256, one byte each, lines ended by CRLF."""
    return text.replace("\n", "\r\n").encode("latin-1")


def _msg(head: str, body: bytes | str = b"") -> bytes:
    """A message from its header block (no trailing empty line) and its body."""
    if isinstance(body, str):
        body = _crlf(body)
    return _crlf(head.strip("\n") + "\n\n") + body


def _sdp(address: str, t: str = "0 0") -> str:
    return (f"v=0\no=mhandley 29739 7272939 IN IP4 {address}\ns=-\nc=IN IP4 {address}\n"
            f"t={t}\nm=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n")


# ---------------------------------------------------------------- 3.1.1 valid messages

# 3.1.1.1 A short tortuous INVITE: folding, odd case and spacing, compact forms, escapes
WSINV = _msg(r"""
INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2@@PORT@@;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33
""", _sdp("192.0.2.4").replace("IN IP4 192.0.2.4\ns=", "IN IP4 192.0.2.3\ns="))

# 3.1.1.2 Wide range of valid characters: BEL, NUL and DEL as quoted-pairs, UTF-8 values
INTMETH = (
    b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$"
    b"/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP host1.example.com@@PORT@@;branch=z9hG4bK-.!%66*_+`'~\r\n"
    b'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,'
    b"/;;*@example.com>\r\n"
    b"From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="
    + '"работающий"'.encode() + b";tag=_token~1'+`*%!-.\r\n"
    b"Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"
    b"CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"
    b"Max-Forwards: 255\r\n"
    b"extensionHeader-!.%*+_`'~:" + "\ufeff大停電".encode() + b"\r\n"
    b"Content-Length: 0\r\n\r\n")

# 3.1.1.3 Valid use of the % escaping mechanism
ESC01 = _msg(r"""
INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net@@PORT@@;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: 150
""", _sdp("192.0.2.1"))

# 3.1.1.4 Escaped NULs in URIs
ESCNULL = _msg(r"""
REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com@@PORT@@;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0
""")

# 3.1.1.5 Use of % when it is not an escape (the method and a header name hold escapes)
ESC02 = _msg(r"""
RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com@@PORT@@;branch=z9hG4bK209%fzsnel234
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0
""")

# 3.1.1.6 No LWS between display name and <
LWSDISP = _msg(r"""
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com@@PORT@@;branch=z9hG4bKkdjuw
l: 0
""")

# 3.1.1.7 Long values in header fields (34 Vias in every spelling, long everything)
LONGREQ = _msg(
    "INVITE sip:user@example.com SIP/2.0\n"
    f'To: "I have a user name of {"extreme" * 10} proportion"<sip:user@example.com:6000;'
    f"unknownparam1=very{'long' * 20}value;longparam{'name' * 25}=shortvalue;"
    f"very{'long' * 25}ParameterNameWithNoValue>\n"
    f"F: sip:{'amazinglylongcallername' * 5}@example.net;tag=12{'982' * 50}424;"
    f"unknownheaderparam{'name' * 20}=unknowheaderparam{'value' * 15};"
    f"unknownValueless{'paramname' * 10}\n"
    f"Call-ID: longreq.one{'really' * 20}longcallid\n"
    "CSeq: 3882340 INVITE\n"
    f"Unknown-{'Long' * 20}-Name: unknown-{'long' * 20}-value; "
    f"unknown-{'long' * 20}-parameter-name = unknown-{'long' * 20}-parameter-value\n"
    "Via: SIP/2.0/TCP sip33.example.com@@PORT@@\n"
    "v: SIP/2.0/TCP sip32.example.com\nV: SIP/2.0/TCP sip31.example.com\n"
    "Via: SIP/2.0/TCP sip30.example.com\nViA: SIP/2.0/TCP sip29.example.com\n"
    "VIa: SIP/2.0/TCP sip28.example.com\nVIA: SIP/2.0/TCP sip27.example.com\n"
    "via: SIP/2.0/TCP sip26.example.com\nviA: SIP/2.0/TCP sip25.example.com\n"
    "vIa: SIP/2.0/TCP sip24.example.com\nvIA: SIP/2.0/TCP sip23.example.com\n"
    "V :  SIP/2.0/TCP sip22.example.com\nv :  SIP/2.0/TCP sip21.example.com\n"
    "V  : SIP/2.0/TCP sip20.example.com\nv  : SIP/2.0/TCP sip19.example.com\n"
    "Via : SIP/2.0/TCP sip18.example.com\nVia  : SIP/2.0/TCP sip17.example.com\n"
    + "".join(f"Via: SIP/2.0/TCP sip{n}.example.com\n" for n in range(16, 0, -1))
    + f"Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very{'long' * 50}branchvalue\n"
    "Max-Forwards: 70\n"
    f"Contact: <sip:{'amazinglylongcallername' * 5}@host5.example.net>\n"
    "Content-Type: application/sdp\n"
    "l: 150\n", _sdp("192.0.2.1"))

# 3.1.1.8 Extra trailing octets in a UDP datagram: a REGISTER, then noise that looks
# like an INVITE (which must be ignored)
DBLREQ = _msg(r"""
REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125@@PORT@@;branch=z9hG4bKkdjuw23492
Content-Length: 0
""", _msg(r"""
INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: 150
""", _sdp("192.0.2.15").replace("m=video", "m =video")))

# 3.1.1.9 Semicolon-separated parameters in the URI user part
SEMIURI = _msg(r"""
OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1@@PORT@@;branch=z9hG4bKkdjuw
l: 0
""")

# 3.1.1.10 Varied and unknown transport types
TRANSPORTS = _msg(r"""
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com@@PORT@@;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0
""")

# 3.1.1.11 Multipart MIME message whose second part is binary (CMS SignedData, with
# NUL, CR, LF and 8-bit bytes): framing must follow Content-Length, not lines
_SMIME = base64.b64decode(
    "MIIBUgYJKoZIhvcNAQcCoIIBQzCCAT8CAQExCTAHBgUrDgMCGjALBgkqhkiG9w0BBwExggEgMIIB"
    "HAIBATB8MHAxCzAJBgNVBAYTAlVTMRMwEQYDVQQIEwpDYWxpZm9ybmlhMREwDwYDVQQHEwhTYW4g"
    "Sm9zZTEOMAwGA1UEChMFc2lwaXQxKTAnBgNVBAsTIFNpcGl0IFRlc3QgQ2VydGlmaWNhdGUgQXV0"
    "aG9yaXR5AggBlQBxAjMBEzAHBgUrDgMCGjANBgkqhkiG9w0BAQEFAASBgI70ZvlI8FIt0uWXjp2V"
    "quny/hWgZllxYpLo2iqo2DUKaM7/rjy9K/8Wdd3VZI5ZPdZHKPJiIPfpQXSeMw2aFe2r25PRDEIQ"
    "LntyidKcwMmuLvvHwM/5Fy87An5PwCfhVG3ktqo6uz5mzMtd1sZLg4MUnLjm/xgtlE/le2W8mdAF")
_IDENTITY = ("r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813"
             "gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeiv"
             "UhkMWYUA=")
MPART01 = _msg(r"""
MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1@@PORT@@;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport
Max-Forwards: 70
Route: <sip:127.0.0.1:5080>
Identity: @@IDENTITY@@
Contact: <sip:fluffy@127.0.0.1:5070>
To: <sip:kumiko@example.org>
From: <sip:fluffy@example.com>;tag=2fb0dcc9
Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..
CSeq: 1 MESSAGE
Content-Transfer-Encoding: binary
Content-Type: multipart/mixed;boundary=7a9cbec02ceef655
Date: Sat, 15 Oct 2005 04:44:56 GMT
User-Agent: SIPimp.org/0.2.5 (curses)
Content-Length: 553
""".replace("@@IDENTITY@@", _IDENTITY),
    _crlf("--7a9cbec02ceef655\nContent-Type: text/plain\nContent-Transfer-Encoding: binary\n\n"
          "Hello\n--7a9cbec02ceef655\nContent-Type: application/octet-stream\n"
          "Content-Transfer-Encoding: binary\n\n")
    + _SMIME + _crlf("\n--7a9cbec02ceef655--\n"))

# 3.1.1.12 Unusual reason phrase (UTF-8: "but 199 is prime")
UNREASON = (
    b"SIP/2.0 200 = 2**3 * 5**2 " + "но сто девяносто девять - простое".encode() + b"\r\n"
    + _msg(r"""
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>
""", _sdp("192.0.2.198")))

# 3.1.1.13 Empty reason phrase (the SP after the code is still there)
NOREASON = _msg("SIP/2.0 100" + " " + r"""
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>
""")

# -------------------------------------------------------------- 3.1.2 invalid messages

# 3.1.2.1 Extraneous header field separators
BADINV01 = _msg(r"""
INVITE sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: badinv01.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15@@PORT@@;;,;,,
Contact: "Joe" <sip:joe@example.org>;;;;
Content-Length: 152
Content-Type: application/sdp
""", _sdp("192.0.2.15"))

# 3.1.2.2 Content-Length larger than the message
CLERR = _msg(r"""
INVITE sip:user@example.com SIP/2.0
Max-Forwards: 80
To: sip:j.user@example.com
From: sip:caller@example.net;tag=93942939o2
Contact: <sip:caller@hungry.example.net>
Call-ID: clerr.0ha0isndaksdjweiafasdk3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host5.example.com@@PORT@@;branch=z9hG4bK-39234-23523
Content-Type: application/sdp
Content-Length: 9999
""", _sdp("192.0.2.155"))

# 3.1.2.3 Negative Content-Length
NCL = _msg(r"""
INVITE sip:user@example.com SIP/2.0
Max-Forwards: 254
To: sip:j.user@example.com
From: sip:caller@example.net;tag=32394234
Call-ID: ncl.0ha0isndaksdj2193423r542w35
CSeq: 0 INVITE
Via: SIP/2.0/UDP 192.0.2.53@@PORT@@;branch=z9hG4bKkdjuw
Contact: <sip:caller@example53.example.net>
Content-Type: application/sdp
Content-Length: -999
""", _sdp("192.0.2.53"))

# 3.1.2.4 Request scalar fields with overlarge values
SCALAR02 = _msg(r"""
REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TCP host129.example.com@@PORT@@;branch=z9hG4bK342sdfoi3
To: <sip:user@example.com>
From: <sip:user@example.com>;tag=239232jh3
CSeq: 36893488147419103232 REGISTER
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32
Max-Forwards: 300
Expires: 1""" + "0" * 100 + r"""
Contact: <sip:user@host129.example.com>
  ;expires=280297596632815
Content-Length: 0
""")

# 3.1.2.5 Response scalar fields with overlarge values
SCALARLG = _msg(r"""
SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834772304023312 OPTIONS
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r
Retry-After: 949302838503028349304023988
Warning: 1812 overture "In Progress"
Content-Length: 0
""")

# 3.1.2.6 Unterminated quoted string in a display name
QUOTBAL = _msg(r"""
INVITE sip:user@example.com SIP/2.0
To: "Mr. J. User <sip:j.user@example.com>
From: sip:caller@example.net;tag=93334
Max-Forwards: 10
Call-ID: quotbal.aksdj
Contact: <sip:caller@host59.example.net>
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.59@@PORT@@;branch=z9hG4bKkdjuw39234
Content-Type: application/sdp
Content-Length: 152
""", _sdp("192.0.2.15"))

# 3.1.2.7 <> enclosing the Request-URI
LTGTRURI = _msg(r"""
INVITE <sip:user@example.com> SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=39291
Max-Forwards: 23
Call-ID: ltgtruri.1@192.0.2.5
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.5@@PORT@@
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: 159
""", _sdp("192.0.2.5", t="3149328700 0"))

# 3.1.2.8 Malformed SIP Request-URI (embedded LWS)
LWSRURI = _msg(r"""
INVITE sip:user@example.com; lr SIP/2.0
To: sip:user@example.com;tag=3xfe-9921883-z9f
From: sip:caller@example.net;tag=231413434
Max-Forwards: 5
Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423
CSeq: 2130706432 INVITE
Via: SIP/2.0/UDP 192.0.2.1@@PORT@@;branch=z9hG4bKkdjuw2395
Contact: <sip:caller@host1.example.net>
Content-Type: application/sdp
Content-Length: 159
""", _sdp("192.0.2.1", t="3149328700 0"))

# 3.1.2.9 Multiple SP separating Request-Line elements
LWSSTART = _msg(r"""
INVITE  sip:user@example.com  SIP/2.0
Max-Forwards: 8
To: sip:user@example.com
From: sip:caller@example.net;tag=8814
Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com
CSeq: 1893884 INVITE
Via: SIP/2.0/UDP host1.example.com@@PORT@@;branch=z9hG4bKkdjuw3923
Contact: <sip:caller@host1.example.net>
Content-Type: application/sdp
Content-Length: 150
""", _sdp("192.0.2.1"))

# 3.1.2.10 SP characters at the end of the Request-Line
TRWS = _msg("OPTIONS sip:remote-target@example.com SIP/2.0" + "  " + r"""
Via: SIP/2.0/TCP host1.examle.com@@PORT@@;branch=z9hG4bK299342093
To: <sip:remote-target@example.com>
From: <sip:local-resource@example.com>;tag=329429089
Call-ID: trws.oicu34958239neffasdhr2345r
Accept: application/sdp
CSeq: 238923 OPTIONS
Max-Forwards: 70
Content-Length: 0
""")

# 3.1.2.11 Escaped headers in the SIP Request-URI
ESCRURI = _msg(r"""
INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=341518
Max-Forwards: 7
Contact: <sip:caller@host39923.example.net>
Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5
CSeq: 149209342 INVITE
Via: SIP/2.0/UDP host-of-the-hour.example.com@@PORT@@;branch=z9hG4bKkdjuw
Content-Type: application/sdp
Content-Length: 150
""", _sdp("192.0.2.1"))

# 3.1.2.12 Invalid time zone in a Date header field
BADDATE = _msg(r"""
INVITE sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=2234923
Max-Forwards: 70
Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234
CSeq: 1392934 INVITE
Via: SIP/2.0/UDP host.example.com@@PORT@@;branch=z9hG4bKkdjuw
Date: Fri, 01 Jan 2010 16:00:00 EST
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: 150
""", _sdp("192.0.2.5"))

# 3.1.2.13 Failure to enclose a name-addr URI in <>
REGBADCT = _msg(r"""
REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=998332
Max-Forwards: 70
Call-ID: regbadct.k345asrl3fdbv@10.0.0.1
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 135.180.130.133@@PORT@@;branch=z9hG4bKkdjuw
Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E
l: 0
""")

# 3.1.2.14 Spaces within addr-spec
BADASPEC = _msg(r"""
OPTIONS sip:user@example.org SIP/2.0
Via: SIP/2.0/UDP host4.example.com@@PORT@@;branch=z9hG4bKkdju43234
Max-Forwards: 70
From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423
To: "Watson, Thomas" < sip:t.watson@example.org >
Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3
Accept: application/sdp
CSeq: 3923239 OPTIONS
l: 0
""")

# 3.1.2.15 Non-token characters in an unquoted display name
BADDN = _msg(r"""
OPTIONS sip:t.watson@example.org SIP/2.0
Via:     SIP/2.0/UDP c.example.com@@PORT@@;branch=z9hG4bKkdjuw
Max-Forwards:      70
From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43
To:      Watson, Thomas <sip:t.watson@example.org>
Call-ID: baddn.31415@c.example.com
Accept: application/sdp
CSeq:    3923239 OPTIONS
l: 0
""")

# 3.1.2.16 Unknown protocol version
BADVERS = _msg(r"""
OPTIONS sip:t.watson@example.org SIP/7.0
Via:     SIP/7.0/UDP c.example.com@@PORT@@;branch=z9hG4bKkdjuw
Max-Forwards:     70
From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe
To:      T. Watson <sip:t.watson@example.org>
Call-ID: badvers.31417@c.example.com
CSeq:    1 OPTIONS
l: 0
""")

# 3.1.2.17 Start line and CSeq method mismatch
MISMATCH01 = _msg(r"""
OPTIONS sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch01.dj0234sxdfl3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host.example.com@@PORT@@;branch=z9hG4bKkdjuw
l: 0
""")

# 3.1.2.18 Unknown method with CSeq method mismatch
MISMATCH02 = _msg(r"""
NEWMETHOD sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch02.dj0234sxdfl3
CSeq: 8 INVITE
Contact: <sip:caller@host.example.net>
Via: SIP/2.0/UDP host.example.net@@PORT@@;branch=z9hG4bKkdjuw
Content-Type: application/sdp
l: 138
""", "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.1\nc=IN IP4 192.0.2.1\n"
     "m=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n")

# 3.1.2.19 Overlarge response code
BIGCODE = _msg(r"""
SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i
CSeq: 353494 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>
""")

# ------------------------------------------------------------ 3.2 transaction layer

# 3.2.1 Missing transaction identifier (a branch that is only the magic cookie)
BADBRANCH = _msg(r"""
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Via: SIP/2.0/UDP 192.0.2.1@@PORT@@;branch=z9hG4bK
Accept: application/sdp
Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n
CSeq: 8 OPTIONS
l: 0
""")

# ------------------------------------------------------- 3.3 application-layer semantics

# 3.3.1 Missing required header fields (no To, From, Call-ID, Max-Forwards)
INSUF = _msg(r"""
INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95@@PORT@@;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: 152
""", _sdp("192.0.2.95"))

# 3.3.2 Request-URI with an unknown scheme
UNKSCM = _msg(r"""
OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com@@PORT@@;branch=z9hG4bKkdjuw39234
Content-Length: 0
""")

# 3.3.3 Request-URI with a known but atypical scheme
NOVELSC = _msg(r"""
OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: novelsc.asdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com@@PORT@@;branch=z9hG4bKkdjuw39234
Content-Length: 0
""")

# 3.3.4 Unknown URI schemes in header fields
UNKSM2 = _msg(r"""
REGISTER sip:example.com SIP/2.0
To: isbn:2983792873
From: <http://www.example.com>;tag=3234233
Call-ID: unksm2.daksdj@hyphenated-host.example.com
CSeq: 234902 REGISTER
Max-Forwards: 70
Via: SIP/2.0/UDP 192.0.2.21@@PORT@@;branch=z9hG4bKkdjuw
Contact: <name:John_Smith>
l: 0
""")

# 3.3.5 Proxy-Require and Require of unknown extensions
BEXT01 = _msg(r"""
OPTIONS sip:user@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.net;tag=242etr
Max-Forwards: 6
Call-ID: bext01.0ha0isndaksdj
Require: nothingSupportsThis, nothingSupportsThisEither
Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis
CSeq: 8 OPTIONS
Via: SIP/2.0/TLS fold-and-staple.example.com@@PORT@@;branch=z9hG4bKkdjuw
Content-Length: 0
""")

# 3.3.6 Unknown Content-Type
INVUT = _msg(r"""
INVITE sip:user@example.com SIP/2.0
Contact: <sip:caller@host5.example.net>
To: sip:j.user@example.com
From: sip:caller@example.net;tag=8392034
Max-Forwards: 70
Call-ID: invut.0ha0isndaksdjadsfij34n23d
CSeq: 235448 INVITE
Via: SIP/2.0/UDP somehost.example.com@@PORT@@;branch=z9hG4bKkdjuw
Content-Type: application/unknownformat
Content-Length: 40
""", '<audio>\n <pcmu port="443"/>\n</audio>\n')

# 3.3.7 Unknown authorization scheme
REGAUT01 = _msg(r"""
REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=87321hj23128
Max-Forwards: 8
Call-ID: regaut01.0ha0isndaksdj
CSeq: 9338 REGISTER
Via: SIP/2.0/TCP 192.0.2.253@@PORT@@;branch=z9hG4bKkdjuw
Authorization: NoOneKnowsThisScheme opaque-data=here
Content-Length:0
""")

# 3.3.8 Multiple values in single-value required fields
MULTI01 = _msg(r"""
INVITE sip:user@company.com SIP/2.0
Contact: <sip:caller@host25.example.net>
Via: SIP/2.0/UDP 192.0.2.25@@PORT@@;branch=z9hG4bKkdjuw
Max-Forwards: 70
CSeq: 5 INVITE
Call-ID: multi01.98asdh@192.0.2.1
CSeq: 59 INVITE
Call-ID: multi01.98asdh@192.0.2.2
From: sip:caller@example.com;tag=3413415
To: sip:user@example.com
To: sip:other@example.net
From: sip:caller@example.net;tag=2923420123
Content-Type: application/sdp
l: 154
Contact: <sip:caller@host36.example.net>
Max-Forwards: 5
""", _sdp("192.0.2.25") + "\n")

# 3.3.9 Multiple Content-Length values
MCL01 = _msg(r"""
OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP host5.example.net@@PORT@@;branch=z9hG4bK293423
To: sip:user@example.com
From: sip:other@example.net;tag=3923942
Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf
CSeq: 15932 OPTIONS
Content-Length: 13
Max-Forwards: 60
Content-Length: 5
Content-Type: text/plain
""", "There's no way to know how many octets are supposed to be here.\n")

# 3.3.10 200 OK response with a broadcast Via header field value
BCAST = _msg(r"""
SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23
Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host28.example.com>
""", _sdp("192.0.2.198"))

# 3.3.11 Max-Forwards of zero
ZEROMF = _msg(r"""
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=3ghsd41
Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas
CSeq: 39234321 OPTIONS
Via: SIP/2.0/UDP host1.example.com@@PORT@@;branch=z9hG4bKkdjuw2349i
Max-Forwards: 0
Content-Length: 0
""")

# 3.3.12 REGISTER with a contact header parameter
CPARAM01 = _msg(r"""
REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP saturn.example.com@@PORT@@;branch=z9hG4bKkdjuw
Max-Forwards: 70
From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe
To: sip:watson@example.com
Call-ID: cparam01.70710@saturn.example.com
CSeq: 2 REGISTER
Contact: sip:+19725552222@gw1.example.net;unknownparam
l: 0
""")

# 3.3.13 REGISTER with a URL parameter
CPARAM02 = _msg(r"""
REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP saturn.example.com@@PORT@@;branch=z9hG4bKkdjuw
Max-Forwards: 70
From: sip:watson@example.com;tag=838293
To: sip:watson@example.com
Call-ID: cparam02.70710@saturn.example.com
CSeq: 3 REGISTER
Contact: <sip:+19725552222@gw1.example.net;unknownparam>
l: 0
""")

# 3.3.14 REGISTER with a URL escaped header
REGESCRT = _msg(r"""
REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=8
Max-Forwards: 70
Call-ID: regescrt.k345asrl3fdbv@192.0.2.1
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com@@PORT@@;branch=z9hG4bKkdjuw
M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>
L:0
""")

# 3.3.15 Unacceptable Accept offering
SDP01 = _msg(r"""
INVITE sip:user@example.com SIP/2.0
To: sip:j_user@example.com
Contact: <sip:caller@host15.example.net>
From: sip:caller@example.net;tag=234
Max-Forwards: 5
Call-ID: sdp01.ndaksdj9342dasdd
Accept: text/nobodyKnowsThis
CSeq: 8 INVITE
Via: SIP/2.0/UDP 60.3.4.5@@PORT@@;branch=z9hG4bKkdjuw
Content-Length: 150
Content-Type: application/sdp
""", _sdp("192.0.2.5"))

# ------------------------------------------------------------ 3.4 backward compatibility

# 3.4.1 INVITE with an RFC 2543 syntax (no branch, no Max-Forwards, a Record-Route)
INV2543 = _msg(r"""
INVITE sip:UserB@example.com SIP/2.0
Via: SIP/2.0/UDP iftgw.example.com@@PORT@@
From: <sip:+13035551111@ift.client.example.net;user=phone>
Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543.1717@ift.client.example.com
CSeq: 56 INVITE
Content-Type: application/sdp
""", "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.5\ns=-\nc=IN IP4 192.0.2.5\nt=0 0\n"
     "m=audio 49217 RTP/AVP 0\n")


ALL: tuple[Torture, ...] = (
    Torture("wsinv", "3.1.1.1", ANSWER, WSINV),
    Torture("intmeth", "3.1.1.2", ANSWER, INTMETH),
    Torture("esc01", "3.1.1.3", ANSWER, ESC01),
    Torture("escnull", "3.1.1.4", ANSWER, ESCNULL),
    Torture("esc02", "3.1.1.5", ANSWER, ESC02),
    Torture("lwsdisp", "3.1.1.6", ANSWER, LWSDISP),
    Torture("longreq", "3.1.1.7", ANSWER, LONGREQ),
    Torture("dblreq", "3.1.1.8", ANSWER, DBLREQ),
    Torture("semiuri", "3.1.1.9", ANSWER, SEMIURI),
    Torture("transports", "3.1.1.10", ANSWER, TRANSPORTS),
    Torture("mpart01", "3.1.1.11", ANSWER, MPART01),
    Torture("unreason", "3.1.1.12", SILENT, UNREASON),
    Torture("noreason", "3.1.1.13", SILENT, NOREASON),
    Torture("badinv01", "3.1.2.1", REFUSE, BADINV01),
    Torture("clerr", "3.1.2.2", REFUSE, CLERR),
    Torture("ncl", "3.1.2.3", REFUSE, NCL),
    Torture("scalar02", "3.1.2.4", REFUSE, SCALAR02),
    Torture("scalarlg", "3.1.2.5", SILENT, SCALARLG),
    Torture("quotbal", "3.1.2.6", REFUSE, QUOTBAL),
    Torture("ltgtruri", "3.1.2.7", REFUSE, LTGTRURI),
    Torture("lwsruri", "3.1.2.8", REFUSE, LWSRURI),
    Torture("lwsstart", "3.1.2.9", REFUSE, LWSSTART),
    Torture("trws", "3.1.2.10", REFUSE, TRWS),
    Torture("escruri", "3.1.2.11", REFUSE, ESCRURI),
    Torture("baddate", "3.1.2.12", REFUSE, BADDATE),
    Torture("regbadct", "3.1.2.13", REFUSE, REGBADCT),
    Torture("badaspec", "3.1.2.14", REFUSE, BADASPEC),
    Torture("baddn", "3.1.2.15", REFUSE, BADDN),
    Torture("badvers", "3.1.2.16", REFUSE, BADVERS),
    Torture("mismatch01", "3.1.2.17", REFUSE, MISMATCH01),
    Torture("mismatch02", "3.1.2.18", REFUSE, MISMATCH02),
    Torture("bigcode", "3.1.2.19", SILENT, BIGCODE),
    Torture("badbranch", "3.2.1", ANSWER, BADBRANCH),
    Torture("insuf", "3.3.1", REFUSE, INSUF),
    Torture("unkscm", "3.3.2", ANSWER, UNKSCM),
    Torture("novelsc", "3.3.3", ANSWER, NOVELSC),
    Torture("unksm2", "3.3.4", ANSWER, UNKSM2),
    Torture("bext01", "3.3.5", ANSWER, BEXT01),
    Torture("invut", "3.3.6", ANSWER, INVUT),
    Torture("regaut01", "3.3.7", ANSWER, REGAUT01),
    Torture("multi01", "3.3.8", REFUSE, MULTI01),
    Torture("mcl01", "3.3.9", REFUSE, MCL01),
    Torture("bcast", "3.3.10", SILENT, BCAST),
    Torture("zeromf", "3.3.11", ANSWER, ZEROMF),
    Torture("cparam01", "3.3.12", ANSWER, CPARAM01),
    Torture("cparam02", "3.3.13", ANSWER, CPARAM02),
    Torture("regescrt", "3.3.14", ANSWER, REGESCRT),
    Torture("sdp01", "3.3.15", ANSWER, SDP01),
    Torture("inv2543", "3.4.1", ANSWER, INV2543),
)

BY_NAME = {t.name: t for t in ALL}
