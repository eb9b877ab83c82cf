"""The notifier: the progress of asynchronous jobs, for browsers (`culture serve notifier --role ...`).

- `worker` consumes the events of the registration flow and records, per job (job id = the events'
  correlation id), each step and its state in Redis:
      identity.user-registered    -> "account"       succeeded
      catalog.profile-created     -> "profile"       succeeded
      catalog.profile-marked-incomplete -> "profile" compensated (the reason as message)
      mailer.welcome-mail-sent    -> "welcome-mail"  succeeded
      mailer.welcome-mail-failed  -> "welcome-mail"  failed (the reason as message)
  Every change bumps the job's version and is published, as a full snapshot, on the Redis pub/sub
  channels `notifier:user:<user_id>` and `notifier:job:<job_id>`, so every gateway replica can push it.
- `api-read` serves culture.notifier.v1.NotifierService: GetJobStatus and WatchJob (server stream).
- `culture_notifier.push.subscribe(redis_url, user_id)` yields those snapshots for one user (the
  gateway's WebSocket/SSE feed); `culture_notifier.push.job_status(redis_url, job_id)` reads one job.

Snapshot (a dict, JSON on the channel): {"type": "job-progress", "job_id", "user_id", "version",
"step", "state", "message" (the step that changed), "job_state" ("running" | "succeeded" |
"failed"), "steps": [{"name", "state", "message", "update_time"}], "create_time", "update_time"}.
Step states: "pending", "succeeded", "failed", "compensated". Snapshots of a job are totally
ordered by `version`; `subscribe` drops any that arrive after a newer one.
"""
