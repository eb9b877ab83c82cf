"""The gateway's OpenAPI 3.1 document (served at /openapi.json). Pure data."""

from __future__ import annotations

from typing import Any

from culture_gateway.openapi_catalog import catalog_paths, catalog_schemas
from culture_gateway.openapi_chat import chat_client_frames, chat_frames, chat_paths, chat_schemas
from culture_gateway.openapi_common import body, line
from culture_gateway.openapi_feed import feed_paths, feed_schemas
from culture_gateway.openapi_graph import graph_paths, graph_schemas

_ERROR = {"$ref": "#/components/schemas/Error"}
#: the email addresses the contract accepts (identity.v1.RegisterRequest.email), as a pattern
_EMAIL = ("^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:[.][A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
          "@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?[.])+[A-Za-z]{2,63}$")
#: what each error status means; every operation documents each one it can answer
_ERROR_TEXT = {
    400: "malformed JSON, or nested deeper than the limit", 401: "missing, invalid or expired token / wrong "
    "credentials", 403: "not yours to change", 404: "not found",
    409: "already exists (fields names the taken field), or a stale version", 413: "body too large",
    415: "the body is not JSON (Content-Type: application/json)",
    422: "invalid fields (fields: field -> what is wrong)", 429: "too many attempts (Retry-After)",
    426: "a WebSocket endpoint asked without the upgrade handshake",
    503: "an upstream service is unavailable (Retry-After)"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(_ERROR, _ERROR_TEXT[c]) for c in codes}


def complete_responses(paths: dict[str, Any]) -> dict[str, Any]:
    """Every status an operation can answer, documented: a JSON body can be malformed (400), too large
    (413), not JSON (415) or have bad fields (422); a protected operation can be refused (401); one
    with parameters can get bad ones (422); anything behind an upstream can find it away (503)."""
    for path, item in paths.items():
        for method, operation in item.items():
            if method == "parameters" or not isinstance(operation, dict):
                continue
            codes: set[int] = set()
            if "requestBody" in operation:
                codes |= {400, 413, 415, 422}
            if operation.get("security") and {} not in operation["security"]:
                codes.add(401)
            if item.get("parameters") or operation.get("parameters"):
                codes.add(422)
            if path not in ("/healthz", "/ws"):
                codes.add(503)
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                responses.setdefault(str(code), _json(_ERROR, _ERROR_TEXT[code]))
    return paths


_TIME = {"type": ["string", "null"], "description": "RFC 3339, UTC; null when not known"}
_JOB_STATE = {"enum": ["running", "succeeded", "failed", "unknown"]}
_STEP_STATE = {"enum": ["pending", "succeeded", "failed", "compensated", "unknown"]}
#: SSE event name -> the schema of its data (culture_gateway.push)
_SSE_EVENTS = {"ready": "PushReady", "step": "PushStep", "done": "PushDone", "error": "PushError"}


def push_schemas() -> dict[str, Any]:
    """The frames of /events (each event's data) and /ws (JSON messages with a `type`)."""
    ready = {"type": "object", "required": ["subscribed"],
             "properties": {"subscribed": {"type": "string", "description": "job <id> or user <id>"}}}
    step = {"type": "object", "required": ["job_id", "step", "state", "job_state"],
            "description": "a step that is new or changed state (a user's stream adds version and steps)",
            "properties": {"job_id": {"type": "string"}, "step": {"type": "string"}, "state": _STEP_STATE,
                           "message": {"type": "string"}, "updated_at": _TIME, "job_state": _JOB_STATE}}
    done = {"type": "object", "required": ["job_id", "job_state", "done"],
            "properties": {"job_id": {"type": "string"}, "job_state": _JOB_STATE, "done": {"const": True}}}
    error = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}

    def typed(name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {**schema, "required": ["type", *schema.get("required", [])],
                "properties": {"type": {"const": name}, **schema.get("properties", {})}}

    ready["properties"]["chat"] = {"type": "object", "description": "a logged-in user's socket also carries "
                                   "the chat frames (ChatFrame*, docs/chat.md)",
                                   "properties": {"presence_ttl_seconds": {"type": "number"},
                                                  "unread_badge": {
                                                      "type": "integer", "minimum": 0,
                                                      "description": "messages that reached me since my "
                                                                     "last connection"}}}
    frames = {name: typed(name, schema) for name, schema in chat_frames().items()}
    return {"PushReady": ready, "PushStep": step, "PushDone": done, "PushError": error,
            "PushMessage": {"oneOf": [typed("ready", ready), typed("step", step), typed("done", done),
                                      {"type": "object", "required": ["type"],
                                       "properties": {"type": {"const": "ping"}}}, *frames.values()]},
            "ChatClientFrame": {"oneOf": [typed(n, schema) for n, schema in chat_client_frames().items()],
                                "description": "what a logged-in client may send on /ws"}}


def openapi_spec(long_poll_max_seconds: float = 30.0) -> dict[str, Any]:
    """The OpenAPI document (`long_poll_max_seconds`: the server's bound of ?wait= on /status)."""
    user = {"type": "object", "properties": {k: {"type": "string"} for k in
                                             ("user_id", "username", "email", "display_name", "created_at")}}
    tokens = {"type": "object", "properties": {
        "token_type": {"const": "Bearer"}, "access_token": {"type": "string"},
        "access_token_expires_at": {"type": "string", "format": "date-time"},
        "refresh_token": {"type": "string"},
        "refresh_token_expires_at": {"type": "string", "format": "date-time"}}}
    job = {"$ref": "#/components/schemas/Job"}
    bearer = [{"bearer": []}, {"queryToken": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "CulturePlatform gateway", "version": "1.0.0",
                 "description": "HTTP/JSON edge of CulturePlatform. Errors: {error: {status, message, "
                                "fields?, correlation_id}}. Send X-Correlation-Id to choose the id "
                                "(on /api/register it becomes the job id)."},
        "paths": complete_responses({
            "/api/register": {"post": {
                "summary": "Create an account; the follow-up set-up runs as a job",
                "requestBody": body({
                    "type": "object", "required": ["username", "email", "password"],
                    "properties": {"username": {"type": "string", "pattern": "^[a-z0-9_.]{3,32}$"},
                                   "email": {"type": "string", "maxLength": 254, "pattern": _EMAIL},
                                   "password": {"type": "string", "minLength": 8, "maxLength": 1024},
                                   "display_name": line(64)}}),
                "responses": {"201": _json({"type": "object", "properties": {
                    "user": user, "job_id": {"type": "string"}, "status_url": {"type": "string"}}},
                    "account created; poll status_url or subscribe to /events?job_id="),
                    **_errors(409, 429)}}},
            "/api/login": {"post": {
                "summary": "Exchange credentials for tokens",
                "requestBody": body({
                    "type": "object", "required": ["login", "password"],
                    "properties": {"login": line(254, 1, description="username or email"),
                                   "password": {"type": "string", "minLength": 1, "maxLength": 1024}}}),
                "responses": {"200": _json({**tokens, "properties": {**tokens["properties"], "user": user}},
                                           "logged in"), **_errors(401, 429)}}},
            "/api/refresh": {"post": {
                "summary": "Exchange a refresh token (single use) for a new token pair",
                "requestBody": body({
                    "type": "object", "required": ["refresh_token"],
                    "properties": {"refresh_token": line(512, 1)}}),
                "responses": {"200": _json(tokens, "new tokens"), **_errors(401)}}},
            "/api/me": {"get": {"summary": "The logged-in user", "security": bearer,
                                "responses": {"200": _json({"type": "object", "properties": {"user": user}},
                                                           "the user"), **_errors(401, 404, 503)}}},
            "/status/{job_id}": {"get": {
                "summary": "A job's progress; long polling with ?wait=",
                "parameters": [
                    {"name": "job_id", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"}},
                    {"name": "wait", "in": "query",
                     "schema": {"type": "number", "minimum": 0, "maximum": long_poll_max_seconds},
                     "description": "seconds to wait for a change (bounded by the server's maximum)"},
                    {"name": "after", "in": "query", "schema": {"type": "string"},
                     "description": "the updated_at last seen: answer once the job differs from it"}],
                "responses": {"200": _json(job, "the job"), **_errors(404, 422, 503)}}},
            "/events": {"get": {
                "summary": "Server-sent events: step changes of ?job_id= or of the logged-in user's jobs",
                "security": [{}, *bearer],
                "parameters": [{"name": "job_id", "in": "query",
                                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"}}],
                "responses": {"200": {"description": "text/event-stream: `event: ready` once, then `step`s "
                                                     "(and `: keep-alive` comments), then `done`; `error` if "
                                                     "the upstream fails. Each event's `data` is JSON of the "
                                                     "schema named in x-events.",
                                      "content": {"text/event-stream": {"schema": {"type": "string"}}},
                                      "x-events": {name: {"$ref": f"#/components/schemas/{schema}"}
                                                   for name, schema in _SSE_EVENTS.items()}},
                              **_errors(401, 503)}}},
            "/ws": {"get": {"summary": "WebSocket with the same messages as /events (JSON, field type); a "
                                       "logged-in user's socket also carries chat frames both ways "
                                       "(PushMessage, ChatClientFrame; docs/chat.md)",
                            "security": [{}, *bearer],
                            "responses": {"101": {"description": "switching protocols; then JSON messages "
                                                                 "of the schema PushMessage",
                                                  "x-messages": {"$ref": "#/components/schemas/PushMessage"}},
                                          "403": {"description": "handshake refused: no valid token or "
                                                                 "job_id"},
                                          **_errors(426)}}},
            **catalog_paths(),
            **graph_paths(),
            **feed_paths(),
            **chat_paths(),
            "/healthz": {"get": {"summary": "Readiness: 200 when every required upstream is SERVING",
                                 "responses": {"200": {"description": "ready"},
                                               "503": {"description": "not ready or draining"}}}},
        }),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                                "queryToken": {"type": "apiKey", "in": "query", "name": "access_token"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "status": {"type": "string"}, "message": {"type": "string"},
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    "retry_after_seconds": {"type": "integer"}, "correlation_id": {"type": "string"}}}}},
                "Job": {"type": "object", "required": ["job_id", "state", "steps"], "properties": {
                    "job_id": {"type": "string"},
                    "state": _JOB_STATE,
                    "steps": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"},
                        "state": _STEP_STATE,
                        "message": {"type": "string"}, "updated_at": _TIME}}},
                    "created_at": _TIME, "updated_at": _TIME}},
                **push_schemas(),
                **catalog_schemas(),
                **graph_schemas(),
                **feed_schemas(),
                **chat_schemas(),
            },
        },
    }
