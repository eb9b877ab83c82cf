"""The feed service (Cassandra): per-user timelines of the reviews of people one follows (see
docs/feed.md). Roles for `culture serve feed`:

- `worker`: `identity.user-registered` -> the user's feed row (FeedCreated), or FeedCreationFailed
  when the admission policy refuses it; `catalog.review-created` -> fan-out to the author's
  followers interested in the review's genres (graph FollowersInterestedIn, paged), in bounded
  concurrent batches; authors with more interested followers than the celebrity threshold are
  merged in at read time instead; `catalog.review-updated/deleted` -> the copies are updated or
  removed; `graph.follow-created/removed` -> the follow mirror and a bounded backfill;
- `api-read`: FeedService.GetFeed, newest first, a cursor across time buckets.

Settings: CULTURE_FEED_* (settings.py); Cassandra and Kafka come from PlatformSettings.
"""
