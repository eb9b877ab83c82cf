"""Peering options: distinct priorities by start time (kopf pauses every replica on equal priorities)."""

from __future__ import annotations

import pytest

from culture_operator.__main__ import auto_priority

pytestmark = pytest.mark.unit


def test_the_earlier_replica_has_the_higher_priority() -> None:
    first, second = auto_priority(1_800_000_000_000_000), auto_priority(1_800_000_000_000_001)
    assert first > second > 0
    assert auto_priority() != auto_priority(0)
