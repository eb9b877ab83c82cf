"""Backends: Kafka (aiokafka), Redis Streams and in-memory. Import the one you use by module
(`culture_events.backends.kafka`): only that module pulls in its client library."""
