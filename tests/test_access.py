"""Access control in the engine: principals and grants, deny by default, grants kept across re-ingest,
revocation at the next read, writes refused to readers, the audit log, and PostgreSQL's row-level security
holding on its own. The randomised leak suite is tests/test_acl_leaks.py."""

from __future__ import annotations

from pathlib import Path

import pytest

import ragkit
from ragkit.access import AclDeclaration, AclRules, Principal, admin, grant_tokens, load_acl_rules
from ragkit.errors import AccessError, UsageError
from ragkit.indexes import acl as sql_acl

ALICE = Principal("alice", groups=["hr"])
CAROL = Principal("carol", groups=["finance"])
BOB = Principal("bob")

RULES = """
[rules]
"hr/" = ["group:hr"]
"fin/" = ["group:finance", "user:dave"]
"pub/*.md" = ["public"]
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    for rel, text in {
        "hr/pay.md": "Salaries are reviewed every March by the people team. The pay bands are secret.",
        "hr/leave.md": "Parental leave is sixteen weeks at full pay for every employee.",
        "fin/forecast.md": "The finance forecast for the third quarter is twelve million euros of revenue.",
        "pub/handbook.md": "The handbook says lunch is served at noon in the canteen on the ground floor.",
        "misc/orphan.md": "This orphan note has no grant, so only admins can read it.",
    }.items():
        (docs / rel).parent.mkdir(parents=True, exist_ok=True)
        (docs / rel).write_text(text, encoding="utf-8")
    (tmp_path / "acl.toml").write_text(RULES, encoding="utf-8")
    return docs


def open_acl_kb(root: Path, url: str | None = None) -> ragkit.KnowledgeBase:
    overrides: dict[str, object] = {"security.access_control": True}
    if url:
        overrides["database_url"] = url
    return ragkit.open(root, **overrides)


def names(hits: list[ragkit.Hit]) -> set[str]:
    return {Path(h.chunk.uri).name for h in hits}


# -- plain data -------------------------------------------------------------------------------------------


def test_grant_tokens_parse_and_refuse_what_they_cannot_read() -> None:
    assert grant_tokens(["group:hr,user:alice", "public", "GROUP:hr"]) == ("group:hr", "public", "user:alice")
    for bad in ["grp:hr", "hr", "user:", "group:a b", "user:" + "x" * 200]:
        with pytest.raises((UsageError, AccessError)):
            grant_tokens([bad])
    assert Principal("alice", groups="hr,staff").tokens == ("user:alice", "group:hr", "group:staff", "public")
    with pytest.raises(UsageError):
        Principal("")


def test_rules_files_match_like_delete_targets(tmp_path: Path) -> None:
    (tmp_path / "acl.toml").write_text(RULES)
    rules = load_acl_rules(tmp_path / "acl.toml")
    assert rules.grants_for("/srv/docs/hr/pay.md") == ("group:hr",)
    assert rules.grants_for("/srv/docs/pub/HANDBOOK.md") == ("public",)
    assert rules.grants_for("/srv/docs/misc/x.md") is None
    declared = AclDeclaration(("user:zed",), rules)
    assert declared.grants_for("/srv/docs/misc/x.md") == ("user:zed",)
    assert AclDeclaration().grants_for("/x") is None
    assert AclDeclaration(rules=AclRules()).grants_for("/x", own=("group:a",)) == ("group:a",)
    (tmp_path / "bad.toml").write_text('[rules]\n"hr/" = "group:hr"\n')
    with pytest.raises(UsageError, match="must be a list"):
        load_acl_rules(tmp_path / "bad.toml")
    (tmp_path / "bad2.toml").write_text('[rules]\n"hr/" = ["grp:hr"]\n')
    with pytest.raises(UsageError, match="bad2.toml"):
        load_acl_rules(tmp_path / "bad2.toml")


# -- through a knowledge base ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("hashed")
def test_deny_by_default_and_each_reader_sees_only_their_grants(tmp_path: Path, corpus: Path) -> None:
    with open_acl_kb(tmp_path / "kb") as kb:
        kb.ingest([corpus], acl_rules=corpus.parent / "acl.toml")
        with pytest.raises(AccessError, match="access-controlled"):
            kb.search("salaries")
        query = "salaries pay forecast lunch orphan leave"
        for mode in ("dense", "keyword", "hybrid"):
            assert names(kb.as_principal(ALICE).search(query, k=10, mode=mode)) <= {
                "pay.md",
                "leave.md",
                "handbook.md",
            }
            assert names(kb.as_principal(CAROL).search(query, k=10, mode=mode)) <= {"forecast.md", "handbook.md"}
            assert names(kb.as_principal(BOB).search(query, k=10, mode=mode)) <= {"handbook.md"}
        assert names(kb.as_principal(ALICE).search(query, k=10, mode="dense")) == {"pay.md", "leave.md", "handbook.md"}
        everything = kb.as_principal(admin("root")).search(query, k=10, mode="dense")
        assert "orphan.md" in names(everything)
        assert kb.acl.log()[0]["action"] == "admin-read"
        assert kb.acl.ungranted() == 1
        # counts and sampling only cover what the reader may read
        assert kb.as_principal(BOB).stats()["documents"] == 1
        assert len(kb.as_principal(ALICE).chunk_ids()) == 3  # hr + public
        hidden = set(kb.as_principal(admin()).chunk_ids()) - set(kb.as_principal(BOB).chunk_ids())
        assert kb.as_principal(BOB).chunks(sorted(hidden)) == {}
        # a filter cannot widen what the grants allow
        assert kb.as_principal(BOB).search("salaries", k=5, filters="source=hr/*") == []


@pytest.mark.usefixtures("hashed")
def test_revoke_takes_effect_at_the_next_read_and_grants_survive_reingest(tmp_path: Path, corpus: Path) -> None:
    with open_acl_kb(tmp_path / "kb") as kb:
        kb.ingest([corpus], allow=["user:eve"])
        eve = kb.as_principal(Principal("eve"))
        assert len(names(eve.search("salaries forecast lunch", k=10))) == 5
        report = kb.acl.revoke(["hr/"], ["user:eve"], actor="ops")
        assert report.changed == 2 and report.unmatched == ()
        assert not names(eve.search("salaries leave", k=10, mode="dense")) & {"pay.md", "leave.md"}
        kb.acl.grant(["hr/pay.md"], ["user:eve"])
        assert "pay.md" in names(eve.search("salaries", k=10, mode="dense"))
        # an unchanged re-ingest without a declaration keeps the grants; a changed file keeps them too
        kb.ingest([corpus])
        (corpus / "hr/pay.md").write_text("Salaries are reviewed every April now.", encoding="utf-8")
        kb.ingest([corpus])
        assert kb.acl.show(["hr/"]) == {str(corpus / "hr/leave.md"): [], str(corpus / "hr/pay.md"): ["user:eve"]}
        # a rules file declares again for unchanged files too
        kb.ingest([corpus], acl_rules=corpus.parent / "acl.toml")
        assert kb.acl.show(["hr/pay.md"]) == {str(corpus / "hr/pay.md"): ["group:hr"]}
        actions = [e["action"] for e in kb.acl.log()]
        assert {"revoke", "grant", "set", "ingest"} <= set(actions)
        assert kb.acl.grant(["12345"], ["public"]).unmatched == ("12345",)


@pytest.mark.usefixtures("hashed")
def test_readers_do_not_write_and_kbs_without_access_control_read_as_before(tmp_path: Path, corpus: Path) -> None:
    with open_acl_kb(tmp_path / "kb") as kb:
        kb.ingest([corpus / "pub"])
        reader = kb.as_principal(ALICE)
        for write in (lambda: reader.ingest([corpus]), lambda: reader.delete_documents(["*"], dry_run=True)):
            with pytest.raises(AccessError, match="may not change it"):
                write()
        kb.as_principal(admin()).delete_documents(["pub/"])  # an admin may
    with ragkit.open(tmp_path / "open") as kb:  # no access control: grants are recorded, reads are not scoped
        kb.ingest([corpus], acl_rules=corpus.parent / "acl.toml")
        assert len(names(kb.search("salaries forecast lunch orphan leave", k=10, mode="dense"))) == 5
        assert kb.acl.show(["pub/"]) == {str(corpus / "pub/handbook.md"): ["public"]}


@pytest.mark.slow
@pytest.mark.usefixtures("hashed")
def test_postgres_row_level_security_holds_without_ragkits_own_filter(
    tmp_path: Path, corpus: Path, pg_app_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_acl_kb(tmp_path / "kb", pg_app_url) as kb:
        kb.ingest([corpus], acl_rules=corpus.parent / "acl.toml")
        query = "salaries pay forecast lunch orphan leave"
        for mode in ("dense", "keyword", "hybrid"):
            assert names(kb.as_principal(CAROL).search(query, k=10, mode=mode)) <= {"forecast.md", "handbook.md"}
        monkeypatch.setattr(sql_acl, "ENFORCE_IN_SQL", False)  # only the database's policies are left
        for mode in ("dense", "keyword", "hybrid"):
            assert names(kb.as_principal(CAROL).search(query, k=10, mode=mode)) <= {"forecast.md", "handbook.md"}
        assert names(kb.as_principal(CAROL).search(query, k=10, mode="dense")) == {"forecast.md", "handbook.md"}
        assert kb.as_principal(BOB).stats()["documents"] == 1
        hidden = set(kb.as_principal(admin()).chunk_ids()) - set(kb.as_principal(BOB).chunk_ids())
        assert hidden and kb.as_principal(BOB).chunks(sorted(hidden)) == {}
        assert len(kb.as_principal(admin()).search(query, k=10, mode="dense")) == 5


@pytest.mark.usefixtures("hashed")
def test_a_sql_sources_acl_column_grants_each_row(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, readers TEXT)")
        conn.executemany(
            "INSERT INTO notes VALUES (?, ?, ?)",
            [
                (1, "Customer Acme renewed their contract for three years.", "group:sales"),
                (2, "Customer Globex is late on two invoices this quarter.", "group:finance,user:alice"),
                (3, "Internal note without readers about the customer churn.", None),
                (4, "A row whose readers cannot be read.", "grp:sales"),
            ],
        )
    source = f"sql:sqlite:///{db}#table=notes&id=id&text=body&acl=readers"
    with open_acl_kb(tmp_path / "kb") as kb:
        report = kb.ingest([source])
        assert report.ingested == 3 and len(report.failed) == 1 and "readers" in report.failed[0].reason
        by_row = {uri.rsplit("=", 1)[-1]: grants for uri, grants in kb.acl.show().items()}
        assert by_row == {"1": ["group:sales"], "2": ["group:finance", "user:alice"], "3": [], "4": []}
        alice = kb.as_principal(Principal("alice"))
        assert [h.chunk.uri[-1] for h in alice.search("customer invoices contract churn", k=5)] == ["2"]
        with sqlite3.connect(db) as conn:  # a changed grant in the source re-stores the row with the new grant
            conn.execute("UPDATE notes SET readers = 'user:alice' WHERE id = 1")
        kb.ingest([source])
        assert {h.chunk.uri[-1] for h in alice.search("customer invoices contract churn", k=5)} == {"1", "2"}


@pytest.mark.usefixtures("hashed")
def test_api_keys_are_stored_hashed_and_map_to_principals(tmp_path: Path) -> None:
    with open_acl_kb(tmp_path / "kb") as kb:
        key, record = kb.keys.create("alice", ["hr", "staff"], scope="read")
        admin_key, _ = kb.keys.create("root", scope="admin")
        assert key.startswith("rk_") and len(key) > 40 and record.prefix == key[:10]
        raw = (tmp_path / "kb" / "ragkit.db").read_bytes()
        assert key.encode() not in raw and key[10:].encode() not in raw  # only the hash is stored
        principal, scope = kb.keys.authenticate(key)
        assert principal == Principal("alice", frozenset({"hr", "staff"})) and scope == "read"
        assert kb.keys.authenticate(admin_key)[0].admin
        for bad in (None, "", "rk_wrong", key + "x", "Bearer " + key):
            with pytest.raises(AccessError, match="valid API key"):
                kb.keys.authenticate(bad)
        with pytest.raises(UsageError, match="scope"):
            kb.keys.create("bob", scope="owner")
        assert kb.keys.revoke("alice") == 1
        with pytest.raises(AccessError):
            kb.keys.authenticate(key)
        assert [k.revoked for k in kb.keys.list()] == [True, False] and kb.keys.any()
        assert {e["action"] for e in kb.acl.log()} >= {"key-create", "key-revoke"}


@pytest.mark.usefixtures("hashed")
def test_allowed_ids_are_cached_per_reader_until_any_write_even_from_another_process(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragkit.indexes import allowed as allowed_mod

    fetches: list[int] = []
    real = allowed_mod.fetch_ids
    monkeypatch.setattr(allowed_mod, "fetch_ids", lambda engine, stmt: fetches.append(1) or real(engine, stmt))
    with open_acl_kb(tmp_path / "kb") as kb:
        kb.ingest([corpus], acl_rules=corpus.parent / "acl.toml")
        alice, carol = kb.as_principal(ALICE), kb.as_principal(CAROL)
        query = "salaries payroll forecasts lunch holidays"  # naming no document: one search (rule DN searches twice)
        first = names(alice.search(query, k=10, mode="dense"))
        assert names(alice.search(query, k=10, mode="dense")) == first and len(fetches) == 1  # cached
        assert names(carol.search(query, k=10, mode="dense")) == {"forecast.md", "handbook.md"}  # its own entry
        assert len(fetches) == 2
        with open_acl_kb(tmp_path / "kb") as other:  # another process's revoke: a new store generation
            other.acl.revoke(["hr/pay.md"], ["group:hr"])
        assert names(alice.search(query, k=10, mode="dense")) == first - {"pay.md"}
        assert len(fetches) == 3
