"""The web page at `/`: one HTML file, one JS module and one CSS file (ragkit/server/web/), no build step, nothing
fetched from elsewhere (it works air-gapped). The page uses the public /v1 routes only, with the caller's API key
(kept in the tab's sessionStorage); `GET /v1/me` tells it who the key stands for and whether it may write.

Every page response carries a Content-Security-Policy that allows this origin only and no inline script, so a
document's text that reaches the page can never run as code (the page also inserts it as text, never as HTML).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, FastAPI, HTTPException, Request
from starlette.responses import Response

from ragkit.server.context import WRITE_SCOPES, Who, context
from ragkit.server.serialize import JSON

ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate: a new ragkit version's page is picked up at once
}

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/v1")


@cache
def _asset(name: str) -> bytes:
    return files("ragkit.server").joinpath("web", name).read_bytes()


@router.get("/")
async def page() -> Response:
    return Response(_asset("index.html"), media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/ui/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, "Not Found")
    return Response(_asset(name), media_type=f"{ASSETS[name]}; charset=utf-8", headers=HEADERS)


@api.get("/me", summary="Who the API key stands for: name, scope, whether it may upload and delete")
async def me(request: Request, who: Who) -> JSON:
    return JSON(
        {
            "name": who.name,
            "scope": who.scope,
            "can_write": who.scope in WRITE_SCOPES,
            "keys_required": context(request).settings.require_keys,
        }
    )


def mount(app: FastAPI) -> None:
    """Serve the page at `/` and its assets under `/ui/`, and add `GET /v1/me`."""
    app.include_router(router)
    app.include_router(api)
