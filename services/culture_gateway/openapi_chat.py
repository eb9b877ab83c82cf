"""The chat's part of the OpenAPI document (merged into openapi.openapi_spec), including the chat
frames of /ws (x-chat-frames; see also docs/chat.md). Pure data."""

from __future__ import annotations

from typing import Any

from culture_gateway.openapi_common import line, text
from culture_gateway.routes_chat import MAX_BODY, MAX_CONVERSATIONS, MAX_HISTORY, MAX_PRESENCE_USERS

_ERROR = {"$ref": "#/components/schemas/Error"}
_TEXT = {
    401: "missing, invalid or expired token",
    403: "not a member of this conversation (the same answer whether or not it exists)",
    422: "invalid fields (fields: field -> what is wrong), e.g. an empty, blank or oversized body, a "
         "page_token this conversation did not issue, a malformed conversation id",
    503: "the chat service is unavailable",
    504: "the chat service did not answer in time",
}
_BEARER = [{"bearer": []}]
CONVERSATION_ID = "^[dg]-[0-9a-f]{32}$"
_MESSAGE = {"$ref": "#/components/schemas/ChatMessage"}
_CONVERSATION = {"$ref": "#/components/schemas/Conversation"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(_ERROR, _TEXT[c]) for c in codes}


def _obj(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


_CONV_PATH = {"name": "conversation_id", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": CONVERSATION_ID},
              "description": "d-... (one-to-one) or g-... (group)"}


def chat_paths() -> dict[str, Any]:
    """Paths of the chat routes (services/culture_gateway/routes_chat.py)."""
    one = _obj(conversation=_CONVERSATION)
    return {
        "/api/conversations": {
            "get": {"summary": "My conversations, most recently active first, with the last message and "
                               "my unread count", "security": _BEARER,
                    "parameters": [{"name": "page_size", "in": "query",
                                    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_CONVERSATIONS},
                                    "description": "0 or absent: 50"},
                                   {"name": "page_token", "in": "query", "schema": line(300),
                                    "description": "next_page_token of the previous page"}],
                    "responses": {"200": _json(_obj(conversations={"type": "array", "items": _CONVERSATION},
                                                    next_page_token={"type": "string"}),
                                               "a page of conversations"), **_errors(401, 422, 503, 504)}},
            "post": {"summary": "Open the one-to-one conversation with a user (the same one every time), or "
                                "create a group of up to 50 members", "security": _BEARER,
                     "requestBody": {"required": True, "content": {"application/json": {"schema": _obj(
                         ["member_user_ids"],
                         member_user_ids={"type": "array", "minItems": 1, "maxItems": 49, "uniqueItems": True,
                                          "items": line(128, 1), "description": "the others (not me)"},
                         kind={"enum": ["direct", "group"],
                               "description": "absent: direct for one other member and no title"},
                         title=line(200), client_request_id=line(128,
                                                                 description="a retry with the same id "
                                                                             "returns the same group"))}}},
                     "responses": {"201": _json(one, "the conversation (created, or the existing one)"),
                                   **_errors(401, 403, 422, 503, 504)}}},
        "/api/conversations/{conversation_id}": {
            "get": {"summary": "One of my conversations", "security": _BEARER, "parameters": [_CONV_PATH],
                    "responses": {"200": _json(one, "the conversation"),
                                  **_errors(401, 403, 422, 503, 504)}}},
        "/api/conversations/{conversation_id}/messages": {
            "get": {"summary": "History: newest first, paging back with page_token; or, with ?after=, the "
                               "messages after that one, oldest first (a reconnecting client's catch-up)",
                    "security": _BEARER,
                    "parameters": [_CONV_PATH,
                                   {"name": "page_size", "in": "query",
                                    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_HISTORY},
                                    "description": "0 or absent: 50"},
                                   {"name": "page_token", "in": "query", "schema": line(200),
                                    "description": "next_page_token of the previous page"},
                                   {"name": "after", "in": "query", "schema": line(64),
                                    "description": "a message id: only newer messages, oldest first"}],
                    "responses": {"200": _json(_obj(messages={"type": "array", "items": _MESSAGE},
                                                    has_more={"type": "boolean"},
                                                    next_page_token={"type": "string"}), "a page"),
                                  **_errors(401, 403, 422, 503, 504)}},
            "post": {"summary": "Send a message; a retry with the same client_message_id stores nothing "
                                "new and answers the first message", "security": _BEARER,
                     "parameters": [_CONV_PATH],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": _obj(
                         ["body"], body={**text(MAX_BODY), "minLength": 1},
                         client_message_id=line(128))}}},
                     "responses": {"201": _json(_obj(message=_MESSAGE), "stored and on its way"),
                                   **_errors(401, 403, 422, 503, 504)}}},
        "/api/conversations/{conversation_id}/read": {
            "post": {"summary": "Mark the conversation read up to a message (never moves back)",
                     "security": _BEARER, "parameters": [_CONV_PATH],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": _obj(
                         message_id=line(64, description="absent: the last message"))}}},
                     "responses": {"200": _json(one, "the conversation with my new unread count"),
                                   **_errors(401, 403, 422, 503, 504)}}},
        "/api/presence": {
            "get": {"summary": "Whether users are online (connected to a gateway within the presence TTL)",
                    "security": _BEARER,
                    "parameters": [{"name": "users", "in": "query", "required": True,
                                    "schema": line(MAX_PRESENCE_USERS * 129, 1),
                                    "description": f"1-{MAX_PRESENCE_USERS} user ids separated by commas"}],
                    "responses": {"200": _json(_obj(presences={"type": "array", "items": {
                        "$ref": "#/components/schemas/Presence"}}), "in the order asked"),
                        **_errors(401, 422, 503, 504)}}},
    }


_TIME = {"type": ["string", "null"], "format": "date-time"}


def chat_frames() -> dict[str, dict[str, Any]]:
    """The chat frames of /ws: server -> client (in PushMessage) and client -> server."""
    return {
        # server -> client
        "chat.message": _obj(["message"], message=_MESSAGE),
        "chat.sent": _obj(["message"], client_message_id={"type": "string"}, message=_MESSAGE),
        "chat.error": _obj(["status", "message"], status={"type": "string"}, message={"type": "string"},
                           fields={"type": "object", "additionalProperties": {"type": "string"}},
                           client_message_id={"type": "string"}),
        "chat.delivered": _obj(["message_id", "user_id"], message_id={"type": "string"},
                               conversation_id={"type": "string"},
                               user_id={"type": "string", "description": "the recipient who acknowledged"}),
        "chat.presence": _obj(["user_id", "status"], user_id={"type": "string"},
                              status={"enum": ["online", "offline"]}),
        "chat.caught-up": _obj(["count"], count={"type": "integer", "minimum": 0}),
    }


def chat_client_frames() -> dict[str, dict[str, Any]]:
    """What a client may send on /ws (JSON objects with a `type`)."""
    return {
        "chat.send": _obj(["body"], conversation_id={"type": "string", "pattern": CONVERSATION_ID},
                          recipient_user_id=line(128), body={**text(MAX_BODY), "minLength": 1},
                          client_message_id=line(128)),
        "chat.ack": _obj(["message_id"], message_id={"type": "string"}, conversation_id={"type": "string"}),
        "chat.resume": _obj(last_message_id={"type": "string",
                                             "description": "the newest message the client has; absent: "
                                                            "from the time the socket opened"}),
        "chat.heartbeat": _obj(),
    }


def chat_schemas() -> dict[str, Any]:
    return {
        "ChatMessage": _obj(message_id={"type": "string", "description": "time-ordered (a version-1 UUID)"},
                            conversation_id={"type": "string"}, sender_user_id={"type": "string"},
                            body={"type": "string"}, sent_at={"type": "string", "format": "date-time"},
                            client_message_id={"type": "string"},
                            member_user_ids={"type": "array", "items": {"type": "string"}}),
        "Conversation": _obj(conversation_id={"type": "string"}, kind={"enum": ["direct", "group"]},
                             member_user_ids={"type": "array", "items": {"type": "string"}},
                             title={"type": "string"}, created_at=_TIME,
                             last_message={"oneOf": [_MESSAGE, {"type": "null"}]},
                             unread_count={"type": "integer", "minimum": 0, "maximum": 100,
                                           "description": "capped at 100: show 99+ above 99"},
                             last_read_message_id={"type": "string"}),
        "Presence": _obj(user_id={"type": "string"}, status={"enum": ["online", "away", "offline"]},
                         last_seen_at=_TIME, expires_at=_TIME),
    }
