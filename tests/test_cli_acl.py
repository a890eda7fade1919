"""Access control through the real CLI (issue 19): ingest --access-control --acl/--allow, reads --as/--groups/
--admin, and `ragkit acl grant|revoke|show|log`, on a KB built with the hash embedder (the fast tier)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run  # the CLI in-process, fixed width; the `hashed` fixture is there too

QUERY = "policy"  # a word every document holds, so a keyword search lists every document the reader may see


def one_red_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert "Traceback" not in result.output
    return lines[0]


def names(result) -> set[str]:  # type: ignore[no-untyped-def]
    """The file names of a `search --json` run's hits."""
    assert result.exit_code == 0, result.output
    return {Path(h["chunk"]["uri"]).name for h in json.loads(result.stdout)["hits"]}


def search(kb: Path, *who: str) -> set[str]:
    return names(run("search", QUERY, "--kb", kb, "--mode", "keyword", "-k", "20", "--json", *who))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    for folder, name, text in [
        ("hr", "salaries.md", "The salary policy: engineers earn ninety thousand."),
        ("hr", "reviews.md", "The review policy: reviews happen in March."),
        ("finance", "budget.md", "The budget policy: travel is capped at five thousand."),
        ("handbook", "welcome.md", "The welcome policy: everyone gets a laptop."),
        ("misc", "orphan.md", "The orphan policy: nobody was granted this file."),
    ]:
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_text(f"# {name}\n\n{text}\n", encoding="utf-8")
    return root


@pytest.fixture
def kb(tmp_path: Path, docs: Path, hashed: None) -> Path:
    """An access-controlled KB: hr/ for group hr, finance/ for group finance, handbook/ public, misc/ nobody."""
    rules = tmp_path / "acl.toml"
    rules.write_text('[rules]\n"hr/" = ["group:hr"]\n"finance/" = ["group:finance"]\n', encoding="utf-8")
    root = tmp_path / "kb"
    result = run(
        "ingest", docs / "hr", docs / "finance", docs / "misc", "--kb", root, "--access-control", "--acl", rules
    )
    assert result.exit_code == 0, result.output
    assert "1 document has no grant: only admins can read it; ragkit acl grant" in result.output  # misc/orphan.md
    result = run("ingest", docs / "handbook", "--kb", root, "--allow", "public")
    assert result.exit_code == 0, result.output
    return root


def test_ingest_records_access_control_in_the_new_kb(kb: Path) -> None:
    assert "access_control = true" in (kb / "ragkit.toml").read_text(encoding="utf-8")
    info = json.loads(run("info", "--kb", kb, "--admin", "--json").stdout)
    assert info["access_control"] is True and info["documents"] == 5


def test_a_reader_sees_only_their_groups_and_public(kb: Path) -> None:
    assert search(kb, "--as", "alice", "--groups", "hr") == {"salaries.md", "reviews.md", "welcome.md"}
    assert search(kb, "--as", "bob", "--groups", "finance,staff") == {"budget.md", "welcome.md"}
    assert search(kb, "--as", "carol") == {"welcome.md"}
    # info counts only what the reader may read
    assert json.loads(run("info", "--kb", kb, "--as", "carol", "--json").stdout)["documents"] == 1


def test_ask_prompts_and_cites_only_what_the_reader_may_read(kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragkit import build
    from ragkit.testing import ScriptedGenerator

    gen = ScriptedGenerator(lambda prompt: "Everyone gets a laptop [1].")
    monkeypatch.setattr(build, "generator_from", lambda cfg, root: gen)
    asked = ("ask", "what is the salary policy?", "--kb", kb, "--min-relevance", "0", "--min-grounding", "0")
    result = run(*asked, "--as", "carol", "--json", "-k", "10", "--mode", "keyword")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert {Path(h["chunk"]["uri"]).name for h in answer["hits"]} == {"welcome.md"}
    assert [Path(c["uri"]).name for c in answer["citations"]] == ["welcome.md"]
    assert len(gen.prompts) == 1 and "laptop" in gen.prompts[0] and "ninety thousand" not in gen.prompts[0]
    alice = run(*asked, "--as", "alice", "--groups", "hr", "--json", "-k", "10", "--mode", "keyword")
    assert alice.exit_code == 0 and "ninety thousand" in gen.prompts[1]  # the same ask, a reader who may see it


@pytest.mark.parametrize("command", [["search", QUERY], ["info"], ["ask", "why?"], ["finetune", "--no-eval"]])
def test_a_read_without_a_reader_is_one_red_line(kb: Path, command: list[str]) -> None:
    result = run(*command, "--kb", kb)
    assert result.exit_code == 1
    line = one_red_line(result)
    assert "access-controlled" in line and "--as NAME" in line
    assert "salaries" not in result.output


def test_a_read_without_a_reader_with_json_is_an_error_object(kb: Path) -> None:
    result = run("search", QUERY, "--kb", kb, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["exit_code"] == 1 and "access-controlled" in json.loads(result.stdout)["error"]


def test_an_admin_reads_everything_and_is_audited(kb: Path) -> None:
    found = search(kb, "--admin", "--as", "root-ops")
    assert found == {"salaries.md", "reviews.md", "budget.md", "welcome.md", "orphan.md"}
    log = json.loads(run("acl", "log", "--kb", kb, "--json").stdout)["entries"]
    assert log[0]["actor"] == "root-ops" and log[0]["action"] == "admin-read" and QUERY in log[0]["target"]
    text = run("acl", "log", "--kb", kb, "--limit", "1")
    assert (
        text.exit_code == 0
        and len(text.stdout.strip().splitlines()) == 1
        and "root-ops  admin-read  policy" in text.stdout
    )


def test_an_admin_without_a_name_is_the_os_user(kb: Path) -> None:
    from ragkit.access import default_actor

    assert "orphan.md" in search(kb, "--admin")
    assert json.loads(run("acl", "log", "--kb", kb, "--json").stdout)["entries"][0]["actor"] == default_actor()


def test_grant_then_revoke_changes_the_next_search(kb: Path, docs: Path) -> None:
    alice = ("--as", "alice", "--groups", "hr")
    assert "budget.md" not in search(kb, *alice)

    granted = run("acl", "grant", docs / "finance", "--kb", kb, "--to", "user:alice", "--by", "ops-lead")
    assert granted.exit_code == 0, granted.output
    assert "granted user:alice on 1 document" in granted.stdout
    assert "budget.md" in search(kb, *alice)
    assert "budget.md" not in search(kb, "--as", "carol")  # only alice got it

    revoked = run("acl", "revoke", "finance/*", "--kb", kb, "--from", "user:alice", "--json")
    assert revoked.exit_code == 0, revoked.output
    report = json.loads(revoked.stdout)
    assert report["action"] == "revoke" and report["changed"] == 1 and report["grants"] == ["user:alice"]
    assert "budget.md" not in search(kb, *alice)

    entries = json.loads(run("acl", "log", "--kb", kb, "--json").stdout)["entries"]
    assert [(e["actor"], e["action"]) for e in entries[:2]][::-1] == [
        ("ops-lead", "grant"),
        (entries[0]["actor"], "revoke"),
    ]


def test_grant_by_document_id_and_again_changes_nothing(kb: Path) -> None:
    table = json.loads(run("acl", "show", "--kb", kb, "--json").stdout)["documents"]
    orphan = next(uri for uri in table if uri.endswith("orphan.md"))
    assert table[orphan] == []
    doc_id = json.loads(run("search", "orphan", "--kb", kb, "--admin", "--mode", "keyword", "--json").stdout)["hits"][
        0
    ]["chunk"]["doc_id"]
    first = run("acl", "grant", f"doc:{doc_id}", "--kb", kb, "--to", "group:misc", "--json")
    assert json.loads(first.stdout)["changed"] == 1 and json.loads(first.stdout)["documents"] == [orphan]
    again = run("acl", "grant", str(doc_id), "--kb", kb, "--to", "group:misc")
    assert (
        again.exit_code == 0
        and "granted group:misc on 0 documents (1 of the 1 matched document already had it)" in again.stdout
    )
    assert "orphan.md" in search(kb, "--as", "dave", "--groups", "misc")


def test_show_lists_grants_and_admins_only(kb: Path, docs: Path) -> None:
    result = run("acl", "show", "--kb", kb)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split(None, 1)[1] for line in result.stdout.splitlines()[1:-1]}
    by_name = {Path(uri).name: grants for uri, grants in rows.items()}
    assert by_name == {
        "salaries.md": "group:hr",
        "reviews.md": "group:hr",
        "budget.md": "group:finance",
        "welcome.md": "public",
        "orphan.md": "(admins only)",
    }
    assert result.stdout.splitlines()[-1] == "5 documents, 1 readable by admins only"
    one = json.loads(run("acl", "show", docs / "hr" / "salaries.md", "--kb", kb, "--json").stdout)
    assert list(one["documents"].values()) == [["group:hr"]] and one["access_control"] is True


def test_unmatched_targets_are_named_and_nothing_matched_exits_1(kb: Path, docs: Path) -> None:
    partly = run("acl", "grant", docs / "hr", "nothing/*.pdf", "--kb", kb, "--to", "group:audit")
    assert partly.exit_code == 0, partly.output
    assert "nothing/*.pdf: no stored document matches" in partly.output and "on 2 documents" in partly.stdout
    none = run("acl", "revoke", "nothing/*.pdf", "999999", "--kb", kb, "--from", "group:audit", "--json")
    assert none.exit_code == 1
    assert json.loads(none.stdout)["unmatched"] == ["nothing/*.pdf", "999999"]
    shown = run("acl", "show", "nothing/*.pdf", "--kb", kb)
    assert shown.exit_code == 1 and "nothing/*.pdf: no stored document matches" in shown.output


@pytest.mark.parametrize(
    "args",
    [
        ["acl", "grant", "hr/", "--to", "grp:hr"],
        ["acl", "revoke", "hr/", "--from", "group:h r"],
        ["acl", "grant", "hr/"],  # nobody named
        ["search", QUERY, "--groups", "hr"],  # groups without --as
        ["search", QUERY, "--as", "al ice"],
    ],
)
def test_a_bad_grant_or_reader_is_a_usage_error(kb: Path, args: list[str]) -> None:
    result = run(*args, "--kb", kb)
    assert result.exit_code == 2
    one_red_line(result)


def test_a_bad_allow_creates_no_kb(tmp_path: Path, docs: Path, hashed: None) -> None:
    result = run("ingest", docs, "--kb", tmp_path / "new", "--access-control", "--allow", "grp:hr")
    assert result.exit_code == 2 and "cannot read the grant 'grp:hr'" in one_red_line(result)
    assert not (tmp_path / "new").exists()
    bad_rules = tmp_path / "bad.toml"
    bad_rules.write_text('[rules]\n"hr/" = "group:hr"\n', encoding="utf-8")
    result = run("ingest", docs, "--kb", tmp_path / "new", "--acl", bad_rules)
    assert result.exit_code == 2 and "must be a list of grants" in one_red_line(result)
    assert not (tmp_path / "new").exists()


def test_access_control_on_an_existing_kb_says_how_to_turn_it_on(tmp_path: Path, docs: Path, hashed: None) -> None:
    root = tmp_path / "open"
    assert run("ingest", docs / "handbook", "--kb", root).exit_code == 0
    result = run("ingest", docs / "hr", "--kb", root, "--access-control")
    assert result.exit_code == 2
    assert "access_control = true" in one_red_line(result) and "ragkit.toml" in result.output
    assert "access_control = true" not in (root / "ragkit.toml").read_text(encoding="utf-8")


def test_reader_flags_on_an_open_kb_say_they_change_nothing(tmp_path: Path, docs: Path, hashed: None) -> None:
    root = tmp_path / "open"
    assert run("ingest", docs, "--kb", root, "--allow", "group:hr").exit_code == 0
    result = run("search", QUERY, "--kb", root, "--as", "carol", "--mode", "keyword", "-k", "20")
    assert result.exit_code == 0 and "has no access control, so --as/--admin change nothing" in result.output
    assert "orphan.md" in result.stdout  # no access control: everyone reads everything
    assert search(root) == {"salaries.md", "reviews.md", "budget.md", "welcome.md", "orphan.md"}


def test_an_empty_search_does_not_count_what_the_reader_cannot_see(kb: Path) -> None:
    result = run("search", "salary", "--kb", kb, "--as", "carol", "--mode", "keyword", "-f", "source=*hr/*")
    assert result.exit_code == 0, result.output
    assert "no chunk matches these filters" in result.stdout  # carol reads no hr/ chunk: it is not counted
    admin = run("search", "zebra", "--kb", kb, "--admin", "--mode", "keyword", "-f", "source=*hr/*")
    assert "2 chunks match the filters" in admin.stdout


def test_eval_reads_as_the_principal(kb: Path, tmp_path: Path) -> None:
    data = tmp_path / "qs.jsonl"
    data.write_text(
        json.dumps(
            {"question": "What is the salary policy?", "answers": ["ninety thousand"], "gold_uris": ["salaries.md"]}
        )
        + "\n",
        encoding="utf-8",
    )
    refused = run("eval", data, "--kb", kb, "--retrieval-only", "--json")
    assert refused.exit_code == 1 and "access-controlled" in json.loads(refused.stdout)["error"]
    for who, expect in [(("--as", "carol"), False), (("--as", "alice", "--groups", "hr"), True)]:
        result = run("eval", data, "--kb", kb, "--retrieval-only", "--json", "--name", who[1], *who)
        assert result.exit_code == 0, result.output
        samples = Path(json.loads(result.stdout)["run_dir"]) / "samples.jsonl"
        text = samples.read_text(encoding="utf-8")
        assert ("salaries.md" in text) is expect
