"""culture_gateway: the HTTP/JSON edge for the browser (starlette on uvicorn).

REST -> gRPC (identity, notifier), `GET /status/{job_id}` long polling, job progress over SSE
(`GET /events`) and WebSocket (`/ws`), OpenAPI at /openapi.json, readiness at /healthz.
Pure parts: errors.py (gRPC status -> HTTP), jobs.py (Job proto -> JSON, change detection),
openapi.py (the spec). I/O: upstreams.py (channels + health), app.py (routes), roles.py.
"""
