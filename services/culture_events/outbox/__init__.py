"""The transactional outbox: write events in the caller's database transaction, relay them later.

A service never writes its database and then publishes (a crash in between loses the event, a
rollback after publishing invents one). Instead it hands its open transaction to an outbox
publisher, which stores the messages as rows (PostgreSQL) or documents (MongoDB) of that same
transaction; a relay claims what was committed, publishes it through any `Publisher` (Kafka in
production) and deletes it. Delivery is at-least-once; order is kept per partition key.

- `culture_events.outbox.postgres`: `PostgresOutbox`, `OutboxPublisher`, `PostgresStore` (asyncpg)
- `culture_events.outbox.mongo`: `MongoOutbox`, `MongoOutboxPublisher`, `MongoStore` (motor)
- `culture_events.outbox.relay`: `Relay`, the store-independent publish loop
- `culture_events.outbox.cli`: `culture events relay ...`

Only the store module you import pulls in its driver.
"""

from culture_events.outbox.records import Entry, prepare, publishable
from culture_events.outbox.relay import Relay, RelayStats

__all__ = ["Entry", "Relay", "RelayStats", "prepare", "publishable"]
