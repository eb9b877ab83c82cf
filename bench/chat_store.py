"""Where a chat send's time goes in Cassandra: the stages of `ChatWriter._send` timed call by call on
the stack's node, each beside the bare driver doing the least that stage could do.

A ChatStore on a keyspace of its own; --senders concurrent senders (one conversation each, as the
api-write's per-conversation lock allows one send at a time) send --messages messages, one every
--interval seconds, timing in turn:

- claim: the client message id's lightweight transaction (`ChatStore.claim_client_id`, INSERT ... IF
  NOT EXISTS: Paxos);
- store: the message's logged batch (message, conversation's last-message cells, outbox entry:
  `ChatStore.store_message`);
- bare insert: one prepared INSERT of the message row alone (the cheapest durable write of a message);
- bare unlogged: the same three statements as an UNLOGGED batch (what the batch log costs).

Prints p50/p99 of each and the ratios to the bare insert. The keyspace is dropped afterwards.

    .venv/bin/python bench/chat_store.py [--senders 50] [--messages 40] [--interval 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid

from events_common import load_note, percentile, unique, up

from culture.events.v1 import chat_events_pb2
from culture_chat import model
from culture_chat.settings import ChatSettings
from culture_chat.store import ChatStore, StoredMessage
from culture_contracts.topics import key_of
from culture_events.codec import encode
from culture_runtime.cassandra import bridge
from culture_stack.endpoints import platform_settings
from culture_stack.server import say


async def run(args: argparse.Namespace) -> None:
    up("cassandra")
    platform = platform_settings()
    keyspace = unique("chatbench").replace("-", "_")
    store = ChatStore(platform.cassandra_contact_points or "", platform.cassandra_port,
                      ChatSettings(keyspace=keyspace))
    await store.connect()
    from cassandra.query import BatchStatement, BatchType

    times: dict[str, list[float]] = {"claim": [], "store": [], "bare insert": [], "bare unlogged": []}
    ids = model.MessageIds()
    prepared = store._prepared  # the bare baselines use the store's own statements

    async def timed(name: str, work: object) -> None:
        t0 = time.perf_counter()
        await work  # type: ignore[misc]
        times[name].append((time.perf_counter() - t0) * 1000)

    async def sender(n: int) -> None:
        conv, who = f"d-{uuid.uuid4().hex}", f"user-{n}"
        await asyncio.sleep(random.uniform(0, args.interval))
        for i in range(args.messages):
            started = time.perf_counter()
            mid = ids.next()
            msg = StoredMessage(mid, conv, who, f"message {i} " + "x" * 60, f"c-{n}-{i}")
            event = chat_events_pb2.MessageSent(message_id=str(mid), conversation_id=conv, sender_user_id=who,
                                                body=msg.body)
            encoded = encode(event, key=key_of(event), event_id=str(mid))
            await timed("claim", store.claim_client_id(conv, who, msg.client_message_id, mid))
            await timed("store", store.store_message(msg, "chat.message-sent", encoded))
            bare = ids.next()
            row = (conv, store.bucket(bare), bare, who, msg.body, msg.client_message_id)
            await timed("bare insert", bridge(store.session.execute_async(prepared["msg_insert"], row)))
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            batch.add(prepared["msg_insert"], row)
            batch.add(prepared["conv_last"], (int(time.time() * 1e6), bare, who, msg.body[:200],
                                              msg.client_message_id, conv))
            batch.add(prepared["outbox_insert"], store.outbox.insert_params("chat.message-sent", encoded))
            await timed("bare unlogged", bridge(store.session.execute_async(batch)))
            await asyncio.sleep(max(0.0, args.interval * random.uniform(0.5, 1.5)
                                    - (time.perf_counter() - started)))

    say(f"==> {args.senders} senders x {args.messages} messages, one every ~{args.interval}s each "
        f"(keyspace {keyspace}); {load_note()}")
    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(sender(n) for n in range(args.senders)))
    finally:
        await asyncio.to_thread(store.session.execute, f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        await store.close()
    say(f"    {args.senders * args.messages} sends in {time.perf_counter() - t0:.1f}s; {load_note()}")
    base = percentile(times["bare insert"], 99)
    for name, values in times.items():
        p50, p99 = percentile(values, 50), percentile(values, 99)
        say(f"    {name:14s} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  (p99 x{p99 / base:.1f} the bare insert's)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=50, help="concurrent senders (conversations)")
    parser.add_argument("--messages", type=int, default=40, help="messages per sender")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between a sender's messages")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
