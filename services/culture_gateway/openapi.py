"""The gateway's OpenAPI 3.1 document (served at /openapi.json). Pure data."""

from __future__ import annotations

from typing import Any

from culture_gateway.openapi_catalog import catalog_paths, catalog_schemas
from culture_gateway.openapi_feed import feed_paths, feed_schemas
from culture_gateway.openapi_graph import graph_paths, graph_schemas

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "malformed JSON", 401: "missing, invalid or expired token / wrong credentials",
            404: "not found", 409: "already exists (fields names the taken field)",
            413: "body too large", 422: "invalid fields (fields: field -> what is wrong)",
            429: "too many attempts (Retry-After)", 503: "an upstream service is unavailable"}
    return {str(c): _json(_ERROR, text[c]) for c in codes}


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI document."""
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
        "paths": {
            "/api/register": {"post": {
                "summary": "Create an account; the follow-up set-up runs as a job",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["username", "email", "password"],
                    "properties": {"username": {"type": "string", "pattern": "^[a-z0-9_.]{3,32}$"},
                                   "email": {"type": "string", "format": "email"},
                                   "password": {"type": "string", "minLength": 8},
                                   "display_name": {"type": "string", "maxLength": 64}}}}}},
                "responses": {"201": _json({"type": "object", "properties": {
                    "user": user, "job_id": {"type": "string"}, "status_url": {"type": "string"}}},
                    "account created; poll status_url or subscribe to /events?job_id="),
                    **_errors(400, 409, 413, 422, 503)}}},
            "/api/login": {"post": {
                "summary": "Exchange credentials for tokens",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["login", "password"],
                    "properties": {"login": {"type": "string", "description": "username or email"},
                                   "password": {"type": "string"}}}}}},
                "responses": {"200": _json({**tokens, "properties": {**tokens["properties"], "user": user}},
                                           "logged in"), **_errors(400, 401, 413, 422, 429, 503)}}},
            "/api/refresh": {"post": {
                "summary": "Exchange a refresh token (single use) for a new token pair",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["refresh_token"],
                    "properties": {"refresh_token": {"type": "string"}}}}}},
                "responses": {"200": _json(tokens, "new tokens"), **_errors(400, 401, 413, 422, 503)}}},
            "/api/me": {"get": {"summary": "The logged-in user", "security": bearer,
                                "responses": {"200": _json({"type": "object", "properties": {"user": user}},
                                                           "the user"), **_errors(401, 404, 503)}}},
            "/status/{job_id}": {"get": {
                "summary": "A job's progress; long polling with ?wait=",
                "parameters": [
                    {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "wait", "in": "query",
                     "schema": {"type": "number", "minimum": 0, "maximum": 300},
                     "description": "seconds to wait for a change (bounded by the server's maximum)"},
                    {"name": "after", "in": "query", "schema": {"type": "string"},
                     "description": "the updated_at last seen: answer once the job differs from it"}],
                "responses": {"200": _json(job, "the job"), **_errors(404, 422, 503)}}},
            "/events": {"get": {
                "summary": "Server-sent events: step changes of ?job_id= or of the logged-in user's jobs",
                "security": [{}, *bearer],
                "parameters": [{"name": "job_id", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "text/event-stream: events ready, step, done",
                                      "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                              **_errors(401, 503)}}},
            "/ws": {"get": {"summary": "WebSocket with the same messages as /events (JSON, field type)",
                            "security": [{}, *bearer],
                            "responses": {"101": {"description": "switching protocols"}}}},
            **catalog_paths(),
            **graph_paths(),
            **feed_paths(),
            "/healthz": {"get": {"summary": "Readiness: 200 when every required upstream is SERVING",
                                 "responses": {"200": {"description": "ready"},
                                               "503": {"description": "not ready or draining"}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                                "queryToken": {"type": "apiKey", "in": "query", "name": "access_token"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "status": {"type": "string"}, "message": {"type": "string"},
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    "retry_after_seconds": {"type": "integer"}, "correlation_id": {"type": "string"}}}}},
                "Job": {"type": "object", "properties": {
                    "job_id": {"type": "string"},
                    "state": {"enum": ["running", "succeeded", "failed"]},
                    "steps": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"},
                        "state": {"enum": ["pending", "succeeded", "failed", "compensated"]},
                        "message": {"type": "string"}, "updated_at": {"type": "string"}}}},
                    "created_at": {"type": "string"}, "updated_at": {"type": "string"}}},
                **catalog_schemas(),
                **graph_schemas(),
                **feed_schemas(),
            },
        },
    }
