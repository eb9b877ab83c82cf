"""The universal contract suite and helpers for event tests (importable by every service's tests).

    from culture_events.testing import Backend, Features, SCENARIOS
"""

from culture_events.testing.fakes import RecordingPublisher
from culture_events.testing.features import Backend, Features
from culture_events.testing.helpers import Collector, prepare_topic, wait_until, wait_until_sync
from culture_events.testing.scenarios import SCENARIOS, scenario

__all__ = ["SCENARIOS", "Backend", "Collector", "Features", "RecordingPublisher", "prepare_topic", "scenario",
           "wait_until", "wait_until_sync"]
