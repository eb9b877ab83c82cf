"""The graph service (Neo4j): follows, ratings, interests, and the social queries (see docs/graph.md).
Roles for `culture serve graph`:

- `api-write`: Follow, Unfollow; each writes the FOLLOWS edge and its event (FollowCreated,
  FollowRemoved) into the Neo4j outbox in ONE transaction;
- `api-read`: ListFollowers, ListFollowing, FriendsWhoLiked, SimilarTastes, Recommend,
  FollowersInterestedIn; every query starts from an index seek;
- `worker`: `identity.user-registered` -> (:User); `catalog.work-created/updated` -> (:Work) and the
  (:Genre) hierarchy; `catalog.review-created/updated/deleted` -> RATED and the author's
  INTERESTED_IN weights, idempotently (versions decide, replays change nothing);
  `graph.follow-created/removed` -> FOLLOWS (by the events' times; what `culture replay graph`
  rebuilds the follows from, see pointer.py);
- `relay`: publishes the committed outbox entries (label `GraphOutbox`) to Kafka.

Settings: CULTURE_GRAPH_* (settings.py; LABEL_PREFIX namespaces every label, store.namespaced); Neo4j
and Kafka come from PlatformSettings.
"""
