# tollgate: the whole stack in one container (Kamailio, rtpengine, Redis, PostgreSQL,
# the IVR and the xDR writer under supervisord), the demo tenant loaded on first start.
#   docker build -t tollgate .
#   docker run --rm -it --network host tollgate          # SIP on 127.0.0.1:5060
# Settings come from TOLLGATE_* variables (docker run -e TOLLGATE_SIP_ADDRESS=...).
FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      kamailio kamailio-python3-modules kamailio-redis-modules kamailio-extra-modules \
      kamailio-utils-modules kamailio-postgres-modules rtpengine-daemon g++ swig uuid-dev xz-utils redis-server postgresql sip-tester \
      baresip-core espeak-ng sox python3-venv python3-dev gcc make supervisor procps \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/tollgate
# dependencies first: a code change does not reinstall them
COPY requirements.txt ./
RUN /usr/bin/python3 -m venv .venv && .venv/bin/pip install --no-cache-dir -r requirements.txt

COPY . .
# the Makefile's stamps say the packages and the venv are there; build the hot path and prompts
RUN mkdir -p var/.stamp && touch var/.stamp/apt .venv/.installed && make build

EXPOSE 5060/udp 5060/tcp 9090/tcp 30000-30999/udp
STOPSIGNAL SIGINT
CMD ["make", "run"]
