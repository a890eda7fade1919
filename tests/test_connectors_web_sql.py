"""Web and SQL connectors through the real ingest pipeline: a local HTTP server and a real SQLite database."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import ragkit
from ragkit.connectors.parsing import SourceOptions, parser_version
from ragkit.errors import SourceError

HTML_PARSER = parser_version(".html", SourceOptions())  # the current version, which a re-read records

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample_corpus"

PAGES: dict[str, tuple[int, str, bytes]] = {
    "/retention.html": (200, "text/html; charset=utf-8", (SAMPLE / "data-retention.html").read_bytes()),
    "/expenses": (200, "application/pdf", (SAMPLE / "expenses.pdf").read_bytes()),
    "/notes.md": (200, "application/octet-stream", b"# Notes\n\nThe lab closes at 8 pm on Fridays.\n"),
    "/logo.png": (200, "image/png", b"\x89PNG\r\n\x1a\n" + bytes(64)),
    "/big.txt": (200, "text/plain", b"x" * 5000),
    "/manual": (
        200,
        "text/html",
        b"<h1>OPTIONS</h1><dl><dt>-k --keep</dt><dd><p>Keep (don't delete) input files.</p></dd></dl>",
    ),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/slow":
            time.sleep(2)
        if self.path == "/drip":  # a byte every 0.2 s for 12 s: each wait is short, the whole body is not
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                for _ in range(60):
                    self.wfile.write(b"d")
                    self.wfile.flush()
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        status, ctype, body = PAGES.get(self.path, (404, "text/plain", b"not found"))
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # the client gave up on /slow (its timeout is the point): without this, socketserver prints a
            # traceback to stderr seconds later, into whichever test is capturing output then
            pass

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_urls_are_fetched_parsed_and_failures_reported(server: str, tmp_path: Path) -> None:
    paths = ("/retention.html", "/expenses", "/notes.md", "/logo.png", "/missing", "/slow", "/drip")
    urls = [f"{server}{p}" for p in paths]
    urls.append(f"{server}/big.txt")
    overrides = {"ingest.url_timeout_s": 0.5, "ingest.max_file_mb": 0.004}
    with ragkit.open(tmp_path / "kb", **overrides) as kb:
        report = kb.ingest(urls)
        assert report.ingested == 3
        reasons = {f.uri.rsplit("/", 1)[-1]: f.reason for f in report.failed}
        assert "content type image/png" in reasons["logo.png"]
        assert "HTTP 404" in reasons["missing"]
        assert "no answer within 0.5 s" in reasons["slow"]
        assert "the body did not arrive within 0.5 s" in reasons["drip"]
        assert "size limit" in reasons["big.txt"]
        hit = kb.search("hotel costs per night", k=1)[0]
        assert hit.chunk.uri == f"{server}/expenses" and hit.chunk.page == 2
        assert kb.search("When does the lab close?", k=1)[0].chunk.uri.endswith("/notes.md")
        again = kb.ingest(urls[:3])
        assert again.unchanged == 3 and again.ingested == 0  # re-fetched, same bytes: not re-parsed


def test_a_url_read_by_an_older_parser_is_read_again(server: str, tmp_path: Path) -> None:
    # the same body as last time is normally not parsed again; but after an upgrade of its parser (HTML definition
    # lists) the fetched page is, although only its content type says which parser applies
    urls = [f"{server}/manual", f"{server}/notes.md"]
    with ragkit.open(tmp_path / "kb") as kb:
        assert kb.ingest(urls).ingested == 2
        assert kb.store.document_states()[urls[0]].parser == HTML_PARSER
    with sqlite3.connect(tmp_path / "kb" / "ragkit.db") as db:  # as an older ragkit left the HTML page
        db.execute("UPDATE documents SET meta = json_remove(meta, '$.parser') WHERE uri LIKE '%/manual'")
        db.execute("UPDATE chunks SET text = 'OPTIONS -k --keep Keep input files.' WHERE text LIKE '%keep%'")
    with ragkit.open(tmp_path / "kb") as kb:
        report = kb.ingest(urls)
        assert (report.ingested, report.unchanged, report.reread) == (1, 1, 1)
        assert "-k --keep: Keep (don't delete) input files." in kb.search("keep input files", k=1)[0].chunk.text
        assert kb.store.document_states()[urls[0]].parser == HTML_PARSER
        again = kb.ingest(urls)
        assert (again.ingested, again.unchanged, again.reread) == (0, 2, 0)


def test_sql_table_rows_become_documents(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as con:
        con.execute("create table products (id integer primary key, name text, description text, price real)")
        con.executemany(
            "insert into products values (?, ?, ?, ?)",
            [
                (1, "Trail shoe", "A light running shoe with a grippy sole for muddy trails.", 89.0),
                (2, "Rain jacket", "A waterproof jacket that packs into its own pocket.", 120.0),
                (3, "Headlamp", "A rechargeable headlamp with 400 lumens for night runs.", 35.5),
            ],
        )
    spec = f"sql:sqlite:///{db}#table=products&id=id&text=name,description&meta=price"
    with ragkit.open(tmp_path / "kb") as kb:
        report = kb.ingest([spec])
        assert report.ingested == 3 and not report.failed
        hit = kb.search("waterproof clothing for rain", k=1)[0]
        assert hit.chunk.uri.endswith("#table=products&id=2") and hit.chunk.section == "Rain jacket"

        with sqlite3.connect(db) as con:
            con.execute("update products set description = 'A headlamp with a red night mode.' where id = 3")
            con.execute("delete from products where id = 1")
        report = kb.ingest([spec], prune=True)
        assert (report.ingested, report.unchanged, report.deleted) == (1, 1, 1)
        assert kb.store.counts()["documents"] == 2
        assert "red night mode" in kb.search("headlamp", k=1)[0].chunk.text

        with pytest.raises(SourceError, match="has no column summary"):
            kb.ingest([f"sql:sqlite:///{db}#table=products&id=id&text=summary"])
        with pytest.raises(SourceError, match="needs table="):
            kb.ingest([f"sql:sqlite:///{db}"])
        with pytest.raises(SourceError) as bad_query:  # one line with the driver's reason, not SQLAlchemy's link
            kb.ingest([f"sql:sqlite:///{db}#query=select nope from products&id=id&text=nope"])
        assert str(bad_query.value) == f"cannot read the query from sqlite:///{db}: no such column: nope"
