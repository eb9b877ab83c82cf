"""The mailer: one welcome mail per registered user (`culture serve mailer --role worker`).

It consumes `identity.user-registered` and sends the mail over SMTP (aiosmtplib) to
CULTURE_SMTP_HOST:CULTURE_SMTP_PORT, then emits `mailer.welcome-mail-sent`; when the mail cannot be
sent after the retries it emits `mailer.welcome-mail-failed` and the event goes to the poison topic
`<group>.poison` with the reason. The notifier turns both into the "welcome-mail" step.

The guarantee, precisely (ledger: a Redis hash per user, `mailer:welcome:<user_id>`):
- A redelivered event (same or different event id, any replica) whose mail the ledger records as
  `sent` sends nothing; it only emits `welcome-mail-sent` again (the notifier is idempotent).
- Before talking SMTP the mailer records `sending` with the Message-ID it will use, derived from
  the event id (`<welcome.<event_id>@<domain>>`) and kept for every later attempt. After the server's
  250 it records `sent`. A per-user lock (SET NX, CULTURE_MAILER_SMTP_TIMEOUT_SECONDS + 5 s, which
  bounds the whole SMTP conversation) keeps two replicas from sending at the same time; the ledger
  is read under it. A replica that dies holding it delays that user's mail until it expires.
- The one window left: the server accepted the mail and the mailer died before recording `sent`.
  The redelivered event finds `sending` and resends the SAME mail with the SAME Message-ID, so the
  SMTP delivery is at-least-once (twice at most per crash in that window) and the mailbox shows it
  once wherever the receiver deduplicates by Message-ID (common providers do; the stack's sink
  shows it with `mails_for`). Skipping the resend instead would lose the mail when the crash came
  before the server accepted it: at-least-once with a stable Message-ID is the better side.
- The ledger outlives Kafka's retention (CULTURE_MAILER_LEDGER_TTL_SECONDS, default 30 days), so no
  redelivery can find it expired.
"""
