"""Graph settings: CULTURE_GRAPH_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from culture_runtime.worker import WorkerSettings


class GraphSettings(WorkerSettings):
    """CULTURE_GRAPH_* settings (the Neo4j URI and Kafka come from PlatformSettings)."""

    model_config = SettingsConfigDict(env_prefix="CULTURE_GRAPH_", extra="ignore")

    consumer_group: str = Field("graph", min_length=1,
                                description="Kafka consumer group; its poison topic is <group>.poison")
    database: str = Field("neo4j", pattern=r"^[A-Za-z0-9.-]{1,63}$", description="Neo4j database")
    outbox_label: str = Field("GraphOutbox", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,62}$",
                              description="node label of the outbox entries")
    label_prefix: str = Field("", pattern=r"^([A-Za-z][A-Za-z0-9_]{0,39})?$",
                              description="prefix of every label and relationship type of the graph (a "
                              "namespace in Neo4j's one database; culture_graph.pointer)")
    follow_pointer: bool = Field(True, description="serve the label prefix a rebuild (`culture replay "
                                 "graph`) switched to; false: the configured one (the rebuild's worker)")
    relay_batch_size: int = Field(500, ge=1, le=10000)
    relay_poll_seconds: float = Field(0.5, gt=0, le=60,
                                      description="how often the relay looks for new outbox entries")
    relay_lease_seconds: float = Field(60.0, gt=1, le=3600,
                                       description="how long a relay holds claimed outbox entries")
    recommend_max_people: int = Field(300, ge=10, le=100_000,
                                      description="Recommend: the closest people (1-3 follows away) it "
                                      "considers")
    similar_max_ratings: int = Field(500, ge=10, le=100_000,
                                     description="SimilarTastes/Recommend: the user's most recent ratings "
                                     "compared with others'")
