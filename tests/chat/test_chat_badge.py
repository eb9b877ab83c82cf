"""The notifier's chat badge: chat.message-sent (through the chat's Cassandra outbox and Kafka)
counts the messages that reached a user; their next connection shows the count, then it resets."""

from __future__ import annotations

import grpc
import httpx
import pytest
from _chat_support import ChatRun, Socket, new_user

from culture.notifier.v1 import notifier_pb2, notifier_pb2_grpc
from culture_events.testing import wait_until

pytestmark = pytest.mark.integration


async def test_messages_to_an_offline_user_become_their_badge(chat_run: ChatRun) -> None:
    gw1, gw2 = chat_run.gateways
    x, y = await new_user(gw1, "x"), await new_user(gw2, "y")
    async with httpx.AsyncClient(base_url=gw1, timeout=30) as http:
        reply = await http.post("/api/conversations", json={"member_user_ids": [y.user_id]}, headers=x.auth)
        conv = reply.json()["conversation"]["conversation_id"]
        for i in range(3):
            sent = await http.post(f"/api/conversations/{conv}/messages",
                                   json={"body": f"while you were away {i}", "client_message_id": f"b{i}"},
                                   headers=x.auth)
            assert sent.status_code == 201, sent.text
        # a retried send (same client message id) is not a new message: not counted again
        again = await http.post(f"/api/conversations/{conv}/messages",
                                json={"body": "while you were away 0", "client_message_id": "b0"},
                                headers=x.auth)
        assert again.status_code == 201
    async with grpc.aio.insecure_channel(chat_run.grpc("api-read", "notifier")) as channel:
        stub = notifier_pb2_grpc.NotifierServiceStub(channel)

        async def badge() -> int:
            reply = await stub.GetChatBadge(notifier_pb2.GetChatBadgeRequest(user_id=y.user_id))
            return reply.unread_count

        async def three() -> bool:
            return await badge() == 3

        await wait_until(three, 60, "the badge to count three messages")
        sender = await stub.GetChatBadge(notifier_pb2.GetChatBadgeRequest(user_id=x.user_id))
        assert sender.unread_count == 0  # your own messages are not news to you
        async with Socket(gw2, y) as sy:
            ready = sy.of("ready")[0]
            assert ready["chat"]["unread_badge"] == 3
        assert await badge() == 0  # shown once: the connection reset it
        async with Socket(gw2, y) as sy:
            assert sy.of("ready")[0]["chat"]["unread_badge"] == 0
