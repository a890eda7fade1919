"""`ragkit keys create | list | revoke`: API keys for `ragkit serve`, each standing for a principal with a scope.

A key is shown once, when it is created; the KB stores only its hash (kb.keys, ragkit/apikeys.py). Scopes: read
(search, ask, documents), write (also upload and delete), admin (reads everything, recorded in the audit log).

Exit codes: 0 success; 1 error, or revoke matched no live key; 2 usage error (a bad name, group or scope).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from ragkit.cli.common import EXIT_ERROR, DbOpt, JsonOpt, KbOpt, db_override, out, plural, print_json, user_errors

keys_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="API keys for ragkit serve: create (shown once), list, revoke. Each key reads as a user with groups.",
)


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="The user the key stands for (reads as user:NAME).")],
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    groups: Annotated[
        list[str] | None,
        typer.Option("--groups", help="The user's groups, comma-separated (hr,staff); repeatable.", show_default=False),
    ] = None,
    scope: Annotated[
        str, typer.Option("--scope", help="read (search, ask, documents), write (also upload, delete) or admin.")
    ] = "read",
    as_json: JsonOpt = False,
) -> None:
    """Create an API key for NAME and print it once (only its hash is stored)."""
    import ragkit

    given = [g.strip() for text in groups or () for g in text.split(",") if g.strip()]
    with user_errors(), ragkit.open(kb, create=False, **db_override(db)) as base:
        key, record = base.keys.create(name, given, scope.strip().lower())
    if as_json:
        print_json({"key": key, "name": record.name, "prefix": record.prefix, "groups": list(record.groups),
                    "scope": record.scope, "created_at": record.created_at})  # fmt: skip
        return
    groups_text = f" (groups {', '.join(record.groups)})" if record.groups else ""
    out.print(
        f"Created a {record.scope} key for {record.name}{groups_text}. It is shown once; store it now:", markup=False
    )
    out.print(key, markup=False)


@keys_app.command("list")
def list_keys(kb: KbOpt = Path("kb"), db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Every key of the KB (revoked ones too), without the keys themselves."""
    import ragkit

    with user_errors(), ragkit.open(kb, create=False, **db_override(db)) as base:
        records = base.keys.list()
    if as_json:
        print_json({"kb": str(kb), "keys": [{**asdict(r), "groups": list(r.groups)} for r in records]})
        return
    if not records:
        out.print(f"no API keys; create one with: ragkit keys create --kb {kb} --name NAME --groups G", markup=False)
        return
    for r in records:
        state = "revoked" if r.revoked else "live"
        groups = ",".join(r.groups) or "-"
        out.print(f"{r.prefix}...  {r.name:<16} {r.scope:<6} groups {groups:<20} {r.created_at}  {state}", markup=False)


@keys_app.command("revoke")
def revoke(
    name_or_prefix: Annotated[str, typer.Argument(help="A user name (all their keys) or a key's listed prefix.")],
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a user's keys, or one key by its prefix; a running server refuses them within a second."""
    import ragkit

    with user_errors(), ragkit.open(kb, create=False, **db_override(db)) as base:
        n = base.keys.revoke(name_or_prefix.strip().removesuffix("..."))
    if as_json:
        print_json({"kb": str(kb), "revoked": n})
    else:
        out.print(f"revoked {plural(n, 'key')}", markup=False)
    if not n:
        raise typer.Exit(EXIT_ERROR)
