"""The API explorer at /docs: Swagger UI 5 (the files PyPI's swagger-ui-py ships) on the gateway's own
/openapi.json, with nothing fetched from elsewhere (the page works offline and behind a proxy)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>CulturePlatform API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/static/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/static/explorer.js"></script>
</body>
</html>
"""

#: started by the page (a file of its own: the page needs no inline script, so a strict
#: Content-Security-Policy holds)
SCRIPT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"
});
"""

#: the page's own scripts and styles only
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
          "connect-src 'self'; frame-ancestors 'none'")


def static_dir() -> Path:
    import swagger_ui

    return Path(swagger_ui.__file__).resolve().parent / "static"


async def page(request: Request) -> Response:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": POLICY})


async def script(request: Request) -> Response:
    return Response(SCRIPT, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


def docs_routes() -> list[BaseRoute]:
    """GET /docs (the page), /docs/static/explorer.js (its start-up) and Swagger UI's files."""
    return [
        Route("/docs", page, methods=["GET"]),
        Route("/docs/static/explorer.js", script, methods=["GET"]),
        Mount("/docs/static", StaticFiles(directory=static_dir()), name="docs-static"),
    ]
