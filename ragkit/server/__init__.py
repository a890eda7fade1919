"""`ragkit serve`: the HTTP API of one knowledge base (FastAPI), a workflow over the `KnowledgeBase` facade.

    from ragkit.server import create_app
    app = create_app(kb, require_keys=True)      # then: uvicorn.run(app, host="127.0.0.1", port=8000)

Every route authenticates its caller (an API key -> a principal and a scope, `kb.keys`) and reads through
`kb.as_principal(principal)`, so the library's access control decides what each caller sees. The event loop
never runs torch, FAISS or SQL: those go to threads, and generation to a bounded lane of its own (429 when full).
See README "Server" for the routes.
"""

from ragkit.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
