"""Prometheus metrics of the xDR writer (multiprocess-safe like tollgate.metrics)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PROCESSED = Counter("tollgate_xdr_processed_total", "xDR events written (one new xDR each)")
DUPLICATES = Counter("tollgate_xdr_duplicates_total",
                     "xDR events already written before (redelivered), acked without effect")
DEAD = Counter("tollgate_xdr_dead_total", "xDR events moved to the dead-letter stream")
RETRIES = Counter("tollgate_xdr_retries_total",
                  "Batches left unacked because PostgreSQL or Redis failed", ["backend"])
CHARGED = Counter("tollgate_xdr_charged_total", "Amount charged by written xDRs (all currencies)")
LAG = Gauge("tollgate_xdr_lag", "Stream entries not yet delivered to the writers group",
            multiprocess_mode="max")
PENDING = Gauge("tollgate_xdr_pending", "Entries delivered to writers but not yet acked",
                multiprocess_mode="max")
DAILY_EMAILS = Counter("tollgate_daily_usage_emails_total",
                       "Max daily usage e-mails to clients, by result (sent, failed)",
                       ["result"])
BATCH_SIZE = Histogram("tollgate_xdr_batch_size", "Events per batch billed in one transaction",
                       buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000))
BATCH_SECONDS = Histogram("tollgate_xdr_batch_seconds",
                          "Time to rate and commit one batch (PostgreSQL included, Redis not)",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
