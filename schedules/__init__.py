"""Scheduled operations: stored jobs, business-date arguments, run-once locking and alerts.

schedules sits above recon and reports and below cli.

Modules: `cron`, `templates` and the evaluation half of `alerts` are the pure core (cron
expressions and crontab lines, argument templates and business dates, alert thresholds,
messages and the retry backoff); `config` checks the settings; `jobs` keeps the definitions;
`runs` the claims, leases and history; `runner` runs one occurrence (subprocess, heartbeat,
alerts); `scheduler` is APScheduler 3 in the foreground.

Choices where the contract is silent:

- A job's command runs as `python -m cli.main ARGS --db URL` (the Python running the scheduler),
  or as TIEOUT_PROGRAM (split like a shell would) when set, e.g. `/opt/tieout/bin/tieout`.
  It runs in a session of its own with TIEOUT_DB, TIEOUT_ACTOR (the actor who added the job),
  TIEOUT_SCHEDULE_JOB, TIEOUT_SCHEDULE_RUN_ID and TIEOUT_SCHEDULE_SCHEDULED_AT; the alert secrets
  are not passed on. A URL with a password goes in TIEOUT_DB only, never on a command line.
- `{date}` is the occurrence's date in the job's time zone (`schedule trigger --date D` sets it);
  `{business_date}`, `{prev_business_date}` and `{next_business_date}` come from the job's
  exchange calendar (`--calendar`, else the `schedule.calendar` setting, else XNYS), and so do
  `{month_start}`, `{month_end}`, `{prev_month_start}`, `{prev_month_end}`.
- `--sessions-only` jobs (the built-in eod-recon, order-expiry and exceptions-report) record a
  skipped run on dates that are not sessions, instead of alerting about a file that cannot come.
  A manual `schedule trigger` runs whatever the date.
- Every `--file` argument must exist when the occurrence starts; else the run fails with
  "input missing" (exit code 3 for `schedule trigger`) and alerts.
- An occurrence whose job still has a run holding a live lease is recorded as skipped (no
  overlapping runs of one job, across schedulers too). One more than the misfire grace time
  late (default 300 s): skipped. Missed occurrences are coalesced into the latest: the others
  are recorded as missed (skipped), and the first of them alerts for all.
- `recon run` jobs get `--json` added (alerting reads the result), said in the stored args.
- `schedule trigger` exits 0 when the run succeeded or was skipped on a date that is no
  session, 4 when it was skipped otherwise (its previous run still going), with the job's own
  exit code when it failed (e.g. 6 for `recon run --fail-on-breaks`), 3 for a missing input,
  1 otherwise.
- `schedule crontab` prints `tieout schedule trigger NAME --scheduled --db URL` per job, the
  scheduler's own code path: `--scheduled` runs the occurrence due now (the latest cron time
  within the grace time), claimed like a scheduler's, so cron and `schedule run` side by side
  still run it once. CRON_TZ (cronie) names the time zone; six-field (seconds) schedules are
  printed as comments, cron cannot run them.
- Day-of-week numbers follow crontab (0 = Sunday), not APScheduler 3 (0 = Monday); restricting
  both day of month and day of week is refused (cron ORs them, APScheduler ANDs them).
- Alert thresholds: `alert.max_breaks` (default 0: any open break after a recon alerts),
  `alert.max_break_amount`, `alert.max_break_age_days` (age: the run's business date minus the
  break's first_seen), `alert.max_quarantined` (default 0); per job with `schedule add ...
  --max-breaks ...`. One alert per run carries every finding; it goes to each configured
  channel, `alert.attempts` times with backoff doubling from `alert.backoff_s`; each channel's
  outcome is a row of `schedule_alerts` (`schedule alerts --json`). SMTP credentials are never
  sent without TLS.
- A run is abandoned when its lease expired and its owner is gone: on PostgreSQL the owner's
  session advisory lock is free; on SQLite (one machine) the owner's process is gone. A killed
  scheduler's job process is not killed with it (it runs in its own session); a supervisor
  that stops the whole process group (systemd's default) ends both.
"""
