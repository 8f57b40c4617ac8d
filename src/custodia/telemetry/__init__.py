"""What the platform tells its operators (docs/operations.md, "Metrics, health and errors").

- `metrics`: the Prometheus request counters and latency histogram, their middleware, the
  sign-in failure counter, and the exposition (one process, or granian's several through
  prometheus_client's multiprocess mode);
- `state`: gauges computed at scrape time from the database and the files the platform keeps
  (job queue, worker heartbeat, backups, restore drill, audit checkpoints, data key ages);
- `health`: the readiness checks (database as the app role, keystore and KEK, job worker);
- `sentry`: optional error reports to Sentry, scrubbed of every request and customer value.

No tenant id, address or customer value is ever a label or leaves in an error report.
"""
