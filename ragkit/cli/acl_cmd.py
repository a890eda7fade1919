"""`ragkit acl grant | revoke | show | log`: who may read which documents of a knowledge base, and the audit log.

Operator commands: they read and change grants (not document text), so they take no --as. The audit log names
the OS user as the one who changed a grant; --by names someone else. Changes take effect for the next read; no
document is re-embedded.

Exit codes: 0 success; 1 error, or no target matched a stored document; 2 usage error (a bad grant).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ragkit.cli.common import (
    EXIT_ERROR,
    DbOpt,
    JsonOpt,
    KbOpt,
    db_override,
    display,
    err,
    grants,
    note_without_access_control,
    out,
    plural,
    print_json,
    user_errors,
)
from ragkit.errors import UsageError

acl_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Who may read which documents: grant, revoke and show grants, read the audit log (no re-embedding).",
)

TargetsArg = Annotated[
    list[str],
    typer.Argument(
        help="Documents: a file, a folder (everything under it), a uri glob ('hr/*', '*.pdf') or a document id "
        "(12 or doc:12).",
        show_default=False,
    ),
]
ByOpt = Annotated[
    str | None,
    typer.Option("--by", help="Who the audit log names for this change [default: the OS user]", show_default=False),
]
ADMINS_ONLY = "(admins only)"


def _actor(by: str | None) -> str | None:
    """--by NAME checked like a user name (the audit log holds it); None = the OS user."""
    if by is None:
        return None
    from ragkit.access import Principal
    from ragkit.errors import AccessError

    try:
        return Principal(by).name
    except AccessError as exc:
        raise UsageError(f"--by: {exc}") from None


def _unmatched(targets: Any) -> None:
    for target in targets:
        err.print(f"{target}: no stored document matches", style="yellow", markup=False)


def _change(
    targets: list[str],
    kb: Path,
    db: str | None,
    tokens: list[str] | None,
    flag: str,
    by: str | None,
    as_json: bool,
    *,
    add: bool,
) -> None:
    import ragkit

    with user_errors():
        given = grants(tokens, flag)
        if not given:
            raise UsageError(f"say whom with {flag} GRANT: group:NAME, user:NAME or public")
        actor = _actor(by)
        with ragkit.open(kb, create=False, **db_override(db)) as base:
            if not as_json:
                note_without_access_control(
                    base, "grants are kept but not enforced (set [security] access_control = true in its ragkit.toml)"
                )
            change = base.acl.grant if add else base.acl.revoke
            report = change(targets, given, actor=actor)
    matched = len(report.documents)
    if as_json:
        print_json({"kb": str(kb), **report.to_json(), "matched": matched})
    else:
        _unmatched(report.unmatched)
        who = ", ".join(report.grants)
        if add:
            line = f"granted {who} on {plural(report.changed, 'document')}"
            rest = "already had it"
        else:
            line = f"revoked {who} from {plural(report.changed, 'document')}"
            rest = "did not have it"
        if matched != report.changed:
            line += f" ({matched - report.changed} of the {plural(matched, 'matched document')} {rest})"
        out.print(line, markup=False)
    if not matched:
        raise typer.Exit(EXIT_ERROR)


@acl_app.command("grant")
def grant(
    targets: TargetsArg,
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to", help="Who may now read them: group:NAME, user:NAME or public (repeatable).", show_default=False
        ),
    ] = None,
    by: ByOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Let --to read the documents TARGETS name, from the next read on; recorded in the audit log.

    Each target that matches nothing is reported; the exit code is 1 when none matched.
    """
    _change(targets, kb, db, to, "--to", by, as_json, add=True)


@acl_app.command("revoke")
def revoke(
    targets: TargetsArg,
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    from_: Annotated[
        list[str] | None,
        typer.Option(
            "--from", help="Whose grant to take away: group:NAME, user:NAME or public (repeatable).", show_default=False
        ),
    ] = None,
    by: ByOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take --from's grant away from the documents TARGETS name: their next search and ask no longer see them.

    Only that grant goes: a reader who also holds another grant of the document (a group, public) still reads
    it. Each target that matches nothing is reported; the exit code is 1 when none matched.
    """
    _change(targets, kb, db, from_, "--from", by, as_json, add=False)


@acl_app.command("show")
def show(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Documents to show (a file, folder, uri glob or document id) [default: every document]",
            show_default=False,
        ),
    ] = None,
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List documents with the grants that let them be read; "(admins only)" marks a document without any."""
    import ragkit

    with user_errors(), ragkit.open(kb, create=False, **db_override(db)) as base:
        enabled = base.acl.enabled
        unmatched: list[str] = []
        if targets:
            unmatched = base.acl.resolve(targets)[1]
        table = base.acl.show(targets or [])
    if as_json:
        print_json({"kb": str(kb), "access_control": enabled, "documents": table, "unmatched": unmatched})
    else:
        _unmatched(unmatched)
        if not enabled:
            err.print(
                f"note: {kb} has no access control: every reader reads every document (grants are not enforced)",
                style="dim",
                markup=False,
            )
        rows = sorted((display(uri), ", ".join(tokens) or ADMINS_ONLY) for uri, tokens in table.items())
        width = min(max([8, *(len(u) for u, _ in rows)]), 70)
        if rows:
            out.print(f"{'document':<{width}}  grants", markup=False)
        for uri, who in rows:
            out.print(f"{uri:<{width}}  {who}", markup=False)
        if not targets:
            bare = sum(1 for _, who in rows if who == ADMINS_ONLY)
            out.print(
                f"{plural(len(rows), 'document')}" + (f", {bare} readable by admins only" if bare else ""), markup=False
            )
    if targets and not table:
        raise typer.Exit(EXIT_ERROR)


@acl_app.command("log")
def log(
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Newest N entries; 0 = all.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The audit log, newest first: grants, revokes, ingest runs that declared grants, and admin reads."""
    import ragkit

    with user_errors(), ragkit.open(kb, create=False, **db_override(db)) as base:
        entries = base.acl.log(limit or None)
    if as_json:
        print_json({"kb": str(kb), "entries": entries})
        return
    if not entries:
        out.print("the audit log is empty", markup=False)
    actor_w = max(len(str(e["actor"])) for e in entries) if entries else 0
    action_w = max(len(str(e["action"])) for e in entries) if entries else 0
    for e in entries:
        detail = f"  ({e['detail']})" if e.get("detail") else ""
        line = f"{e['at']}  {e['actor']:<{actor_w}}  {e['action']:<{action_w}}  {e['target']}{detail}"
        out.print(line, markup=False)
