"""culture_identity: the identity service (accounts, password hashes, tokens; emits UserRegistered).

Roles (`culture serve identity --role ...`, see roles.py):

- api-write: the whole IdentityService (Register, Login, Refresh write; ValidateToken, GetUser read).
- api-read: ValidateToken and GetUser only, scaled on its own (every gateway request validates a
  token); the write RPCs answer UNIMPLEMENTED there, naming the api-write role.
- relay: publishes the committed outbox rows (`UserRegistered`) to Kafka.

Pure code (validation.py, tokens.py, migrations' SQL list) is separate from I/O (store.py,
ratelimit.py, service.py).
"""
