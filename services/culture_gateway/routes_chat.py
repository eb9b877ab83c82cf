"""The chat's HTTP routes (JSON <-> ChatService; "me" is the user of the validated access token):

- GET  /api/conversations                      my conversations, most recently active first (paged)
- POST /api/conversations                      open a one-to-one conversation or create a group
- GET  /api/conversations/{id}                 one of my conversations
- GET  /api/conversations/{id}/messages        history: newest first with page_token, or ?after=
- POST /api/conversations/{id}/messages        send (idempotent per client_message_id)
- POST /api/conversations/{id}/read            move my read mark
- GET  /api/presence?users=a,b                 online/offline of up to 100 users

The live side (chat frames on /ws) is culture_gateway.chat; see docs/chat.md and openapi_chat.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from culture.chat.v1 import chat_pb2
from culture_chat.live import message_json
from culture_gateway.errors import HttpError, single_params

if TYPE_CHECKING:
    from culture_gateway.app import Gateway

MAX_HISTORY = 200
MAX_CONVERSATIONS = 200
MAX_PRESENCE_USERS = 100
MAX_BODY = 4000
_KINDS = {"direct": chat_pb2.CONVERSATION_KIND_DIRECT, "group": chat_pb2.CONVERSATION_KIND_GROUP}
_KIND_NAMES = {v: k for k, v in _KINDS.items()}
_STATUS = {chat_pb2.PRESENCE_STATUS_ONLINE: "online", chat_pb2.PRESENCE_STATUS_AWAY: "away",
           chat_pb2.PRESENCE_STATUS_OFFLINE: "offline"}


def _time(ts: Any) -> str | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime().isoformat(timespec="microseconds") + "Z"


def chat_message_json(m: chat_pb2.ChatMessage) -> dict[str, Any]:
    return message_json(m.message_id, m.conversation_id, m.sender_user_id, m.body, _time(m.send_time) or "",
                        m.client_message_id, list(m.member_user_ids))


def conversation_json(c: chat_pb2.Conversation) -> dict[str, Any]:
    return {"conversation_id": c.conversation_id, "kind": _KIND_NAMES.get(c.kind, "direct"),
            "member_user_ids": list(c.member_user_ids), "title": c.title, "created_at": _time(c.create_time),
            "last_message": chat_message_json(c.last_message) if c.HasField("last_message") else None,
            "unread_count": c.unread_count, "last_read_message_id": c.last_read_message_id}


def presence_json(p: chat_pb2.Presence) -> dict[str, Any]:
    return {"user_id": p.user_id, "status": _STATUS.get(p.status, "offline"),
            "last_seen_at": _time(p.last_seen_time), "expires_at": _time(p.expire_time)}


def _limit(request: Request, name: str, most: int) -> int:
    raw = request.query_params.get(name, "")
    if raw == "":
        return 0
    if not raw.isdigit() or int(raw) > most:
        raise HttpError(422, "INVALID_ARGUMENT", f"bad {name}", {name: f"must be a whole number 0-{most}"})
    return int(raw)


def _line(request: Request, name: str, most: int) -> str:
    value = request.query_params.get(name, "")
    if len(value) > most or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise HttpError(422, "INVALID_ARGUMENT", f"bad {name}",
                        {name: f"at most {most} characters, no control characters"})
    return value


class ChatRoutes:
    """The chat routes, bound to a Gateway (its upstreams, settings and auth)."""

    def __init__(self, gateway: Gateway) -> None:
        self.g = gateway

    @property
    def _timeout(self) -> float:
        return self.g.settings.rpc_timeout_seconds

    async def list_conversations(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        single_params(request, "page_size", "page_token")
        reply = await self.g.up.chat_read.ListConversations(
            chat_pb2.ListConversationsRequest(user_id=claims.user_id,
                                              page_size=_limit(request, "page_size", MAX_CONVERSATIONS),
                                              page_token=_line(request, "page_token", 300)),
            timeout=self._timeout)
        return JSONResponse({"conversations": [conversation_json(c) for c in reply.conversations],
                             "next_page_token": reply.next_page_token})

    async def create_conversation(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        data = await self.g._json_body(request)
        fields = self.g._strings(data, ("title", "kind", "client_request_id"))
        members = data.get("member_user_ids")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise HttpError(422, "INVALID_ARGUMENT", "the request has invalid fields",
                            {"member_user_ids": "must be a list of user ids"})
        if fields["kind"] and fields["kind"] not in _KINDS:
            raise HttpError(422, "INVALID_ARGUMENT", "the request has invalid fields",
                            {"kind": "must be direct or group"})
        reply = await self.g.up.chat_write.CreateConversation(
            chat_pb2.CreateConversationRequest(creator_user_id=claims.user_id, member_user_ids=members,
                                               kind=_KINDS.get(fields["kind"], 0), title=fields["title"],
                                               client_request_id=fields["client_request_id"]),
            timeout=self._timeout)
        return JSONResponse({"conversation": conversation_json(reply.conversation)}, status_code=201)

    async def get_conversation(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        reply = await self.g.up.chat_read.GetConversation(
            chat_pb2.GetConversationRequest(user_id=claims.user_id,
                                            conversation_id=request.path_params["conversation_id"]),
            timeout=self._timeout)
        return JSONResponse({"conversation": conversation_json(reply.conversation)})

    async def history(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        single_params(request, "page_size", "page_token", "after")
        reply = await self.g.up.chat_read.History(
            chat_pb2.HistoryRequest(user_id=claims.user_id,
                                    conversation_id=request.path_params["conversation_id"],
                                    page_size=_limit(request, "page_size", MAX_HISTORY),
                                    page_token=_line(request, "page_token", 200),
                                    after_message_id=_line(request, "after", 64)),
            timeout=self._timeout)
        return JSONResponse({"messages": [chat_message_json(m) for m in reply.messages],
                             "has_more": reply.has_more, "next_page_token": reply.next_page_token})

    async def send(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        fields = self.g._strings(await self.g._json_body(request), ("body", "client_message_id"))
        reply = await self.g.up.chat_write.SendMessage(
            chat_pb2.SendMessageRequest(sender_user_id=claims.user_id,
                                        conversation_id=request.path_params["conversation_id"], **fields),
            timeout=self._timeout)
        return JSONResponse({"message": chat_message_json(reply.message)}, status_code=201)

    async def mark_read(self, request: Request) -> Response:
        claims = await self.g._authenticate(request)
        fields = self.g._strings(await self.g._json_body(request), ("message_id",))
        reply = await self.g.up.chat_write.MarkRead(
            chat_pb2.MarkReadRequest(user_id=claims.user_id,
                                     conversation_id=request.path_params["conversation_id"],
                                     **fields),
            timeout=self._timeout)
        return JSONResponse({"conversation": conversation_json(reply.conversation)})

    async def presence(self, request: Request) -> Response:
        await self.g._authenticate(request)
        single_params(request, "users")
        raw = request.query_params.get("users", "")
        users = [u for u in raw.split(",") if u]
        if not users or len(users) > MAX_PRESENCE_USERS or len(raw) > MAX_PRESENCE_USERS * 129:
            raise HttpError(422, "INVALID_ARGUMENT", "bad users",
                            {"users": f"1-{MAX_PRESENCE_USERS} user ids, separated by commas"})
        reply = await self.g.up.chat_read.GetPresence(chat_pb2.GetPresenceRequest(user_ids=users),
                                                      timeout=self._timeout)
        return JSONResponse({"presences": [presence_json(p) for p in reply.presences]})

    def routes(self) -> list[BaseRoute]:
        conv = "/api/conversations/{conversation_id}"
        return [Route("/api/conversations", self.list_conversations, methods=["GET"]),
                Route("/api/conversations", self.create_conversation, methods=["POST"]),
                Route(conv, self.get_conversation, methods=["GET"]),
                Route(f"{conv}/messages", self.history, methods=["GET"]),
                Route(f"{conv}/messages", self.send, methods=["POST"]),
                Route(f"{conv}/read", self.mark_read, methods=["POST"]),
                Route("/api/presence", self.presence, methods=["GET"])]
