"""The catalog service (MongoDB): works, reviews and profiles. Roles for `culture serve catalog`:

- `worker`: consumes `identity.user-registered` and creates the user's profile, idempotently (the
  profile's `_id` is the user id): the profile and its `ProfileCreated` outbox document are written
  in ONE MongoDB transaction, so a redelivered event finds the profile and writes nothing more;
- `relay`: publishes the committed outbox documents (`catalog_outbox`) to Kafka
  (`catalog.profile-created`), at least once, in order per user;
- `api-read`: CatalogService.GetProfile over gRPC (the other RPCs answer UNIMPLEMENTED for now).

Settings: CULTURE_CATALOG_* (see settings.py); the Mongo URI and Kafka come from PlatformSettings.
"""
