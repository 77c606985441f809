"""Serve /metrics aggregated over every process that writes to PROMETHEUS_MULTIPROC_DIR."""
from __future__ import annotations

import argparse
import os
import time

from prometheus_client import CollectorRegistry, multiprocess, start_http_server

from tollgate import config


def main(argv: list[str] | None = None) -> None:
    settings = config.load()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=settings.metrics_port)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args(argv)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise SystemExit("tollgate-metrics: PROMETHEUS_MULTIPROC_DIR is not set")
    registry = CollectorRegistry()
    # registers itself; prometheus_client leaves its __init__ unannotated
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(args.port, addr=args.address, registry=registry)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
