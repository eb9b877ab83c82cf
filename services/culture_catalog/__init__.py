"""The catalog service (MongoDB): works, reviews and profiles (see docs/catalog.md). Roles for
`culture serve catalog`:

- `api-write`: the commands (CreateWork, UpdateWork, CreateReview, UpdateReview, DeleteReview,
  UpdateProfile); each writes its documents and its event into the outbox in ONE transaction;
- `api-read`: the queries (GetWork and BatchGetWorks through the Redis cache, ListWorks, SearchWorks,
  ListReviews, GetProfile);
- `worker`: `identity.user-registered` -> the user's profile (+ ProfileCreated), idempotently;
  `feed.creation-failed` -> MarkProfileIncomplete (+ ProfileMarkedIncomplete); the catalog's own
  work/review events -> the cached work is deleted;
- `relay`: publishes the committed outbox documents (`catalog_outbox`) to Kafka, at least once, in
  order per key.

Settings: CULTURE_CATALOG_* (see settings.py); Mongo, Redis and Kafka come from PlatformSettings.
"""
