"""`culture events poison list|show|replay GROUP`: what a consumer group gave up on, and its replay.

    culture events poison list mailer                 # one line per poisoned event
    culture events poison show mailer EVENT_ID        # every field of its latest record
    culture events poison replay mailer --id EVENT_ID # back to the topic it came from
    culture events poison replay mailer --all

GROUP is the worker's consumer group (its poison topic is GROUP.poison; --topic names another).
Kafka comes from --brokers or $CULTURE_KAFKA_BOOTSTRAP. A replayed event keeps its original id:
handlers that deduplicate process it at most once however often it is replayed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import textwrap

from culture_events.errors import EventsError
from culture_events.middleware.poison import PoisonMeta


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def add_verbs(verbs: argparse._SubParsersAction) -> None:
    """Add `poison` and its verbs under `culture events`."""
    p = verbs.add_parser("poison", help="list, show and replay a consumer group's poisoned events",
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         description=textwrap.dedent(__doc__ or "").strip())
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("group", help="the consumer group (its poison topic is GROUP.poison)")
    common.add_argument("--topic", help="the poison topic, when it is not GROUP.poison")
    common.add_argument("--brokers", default=os.environ.get("CULTURE_KAFKA_BOOTSTRAP"),
                        help="Kafka bootstrap servers (default: $CULTURE_KAFKA_BOOTSTRAP)")
    common.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="how long reading the topic may take (default: 30)")
    actions.add_parser("list", parents=[common], help="one line per poisoned event (latest record each)",
                       description="One line per poisoned event: id, source topic/partition/offset, "
                       "handler, attempts, time and reason (the latest record of each event).")
    show = actions.add_parser("show", parents=[common], help="every field of one event's latest record",
                              description="Every metadata field of one poisoned event's latest record.")
    show.add_argument("event_id", help="the event id (as `list` prints it)")
    rp = actions.add_parser("replay", parents=[common], help="publish poisoned events back to their topics",
                            description="Publish the chosen events (latest record each) back to the topic "
                            "they were consumed from, under their original event ids.")
    which = rp.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="ids", action="append", metavar="EVENT_ID", help="an event (repeatable)")
    which.add_argument("--all", action="store_true", help="every event in the poison topic")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.brokers:
        _say("error: missing settings: --brokers (or $CULTURE_KAFKA_BOOTSTRAP)")
        return 2
    try:
        return asyncio.run(_act(args))
    except EventsError as exc:
        _say(f"error: {exc}")
        return 1


async def _act(args: argparse.Namespace) -> int:
    from culture_events import poison

    topic = args.topic or poison.poison_topic(args.group)
    _say(f"poison: reading {topic} on {args.brokers}")
    records = await poison.read(args.brokers, topic, within=args.timeout)
    latest = poison.latest_per_event(records)
    _say(f"poison: {len(records)} records, {len(latest)} events")
    if args.action == "list":
        for r in latest.values():
            source = f"{r.field(PoisonMeta.TOPIC)}[{r.field(PoisonMeta.PARTITION) or '?'}]" \
                     f"@{r.field(PoisonMeta.OFFSET) or '?'}"
            reason = r.field(PoisonMeta.REASON).replace("\n", " ")[:120]
            print(f"{r.event_id}  {source}  {r.field(PoisonMeta.HANDLER)}  "
                  f"attempts={r.field(PoisonMeta.ATTEMPTS)}  {r.field(PoisonMeta.POISONED_AT)}  {reason}")
        return 0
    if args.action == "show":
        record = latest.get(args.event_id)
        if record is None:
            _say(f"error: no event {args.event_id} in {topic}")
            return 1
        print(f"event_id: {record.event_id}\npoison record: {topic}[{record.partition}]@{record.offset}")
        for key, value in sorted(record.message.metadata.items()):
            print(f"{key}: {value}")
        print(f"payload: {len(record.message.payload)} bytes")
        return 0
    try:
        chosen = poison.choose(records, None if args.all else args.ids)
    except KeyError as exc:
        _say(f"error: not in {topic}: {exc.args[0]}")
        return 1
    for event_id, to in await poison.replay(args.brokers, chosen):
        print(f"replayed {event_id} -> {to}")
    _say(f"poison: replayed {len(chosen)} events")
    return 0
