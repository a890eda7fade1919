"""Regenerate examples/sample_corpus/ (text written for ragkit, CC0). Run: python scripts/make_sample_corpus.py

The PDF is written by a tiny PDF writer below (standard Helvetica, one text object per line) so no PDF library
is needed; the DOCX uses python-docx. Every file holds facts found in no other file, so a test can check that
the answer to a question cites the one file that holds it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "examples" / "sample_corpus"

KEYS_MD = """# Key rotation policy

Northwind Robotics keeps every production secret in the company vault.

## How often keys are rotated

Production API keys must be rotated every 90 days. Staging keys are rotated every 180 days.
The on-call engineer performs the rotation with the `vault rotate --env prod` command and records it in the change log.

## Leaked keys

If a key is leaked, for example pushed to a public repository, it must be revoked and replaced within 4 hours.
The security team then reviews the access logs of the last 30 days for that key.
"""

RETENTION_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Data retention</title></head>
<body>
<h1>Data retention and deletion</h1>
<p>Northwind Robotics keeps customer telemetry logs for 400 days, after which they are deleted automatically.</p>
<h2>Backups</h2>
<p>Backups are encrypted with AES-256 and stored in two regions, Frankfurt and Dublin.</p>
<ul><li>Nightly backups are kept for 35 days.</li><li>Monthly backups are kept for seven years.</li></ul>
<h2>Deletion requests</h2>
<p>A customer deletion request must be completed within 21 days, and the customer receives a confirmation e-mail.</p>
</body></html>
"""

ONCALL_TXT = """On-call handbook

The on-call rotation changes every week. The handover meeting is held on Monday at 10:00 in the operations room.

When the pager fires, the on-call engineer must acknowledge the page within 15 minutes.
If the incident affects customers, the engineer escalates to the incident commander, who opens a status page update within 30 minutes.

Every incident gets a written post-mortem within five working days. Post-mortems are blameless and are shared with the whole engineering department.
"""

ONBOARDING = [
    ("Title", "Onboarding: your first week"),
    ("Text", "Welcome to Northwind Robotics. New employees collect their laptop from the IT desk on floor 3 on their first morning."),
    ("Heading", "Buddy programme"),
    ("Text", "Every new employee is paired with a buddy from another team for the first eight weeks. The buddy meets you for lunch on your first day."),
    ("Heading", "Badges"),
    ("Text", "Badge photos are taken on Tuesday afternoons at reception. Until then you sign in as a visitor."),
]

EXPENSES_PAGES = [
    [
        "Expense policy",
        "",
        "Expense reports must be filed within 30 days of the purchase,",
        "with a photo of every receipt attached in the finance portal.",
        "",
        "Purchases above 500 euros need the written approval",
        "of your department head before you buy.",
    ],
    [
        "Travel",
        "",
        "Flights shorter than six hours are booked in economy class.",
        "Hotel costs are reimbursed up to 180 euros per night.",
        "",
        "Train travel is preferred over flights for trips under four hours.",
    ],
]


def write_pdf(path: Path, pages: list[list[str]]) -> None:
    """A minimal valid PDF: one Helvetica text object per line, one page per list."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    objects: list[bytes] = []
    n_pages = len(pages)
    page_ids = [4 + 2 * i for i in range(n_pages)]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{p} 0 R" for p in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "16 TL", "72 740 Td"]
        for line in lines:
            ops.append(f"({esc(line)}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {page_ids[i] + 1} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


def write_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    for kind, text in ONBOARDING:
        if kind == "Title":
            document.add_heading(text, level=0)
        elif kind == "Heading":
            document.add_heading(text, level=1)
        else:
            document.add_paragraph(text)
    document.core_properties.created = datetime(2026, 1, 1)  # keep the file reproducible
    document.save(path)


def main() -> None:
    (OUT / "security").mkdir(parents=True, exist_ok=True)
    (OUT / "security" / "key-rotation.md").write_text(KEYS_MD, encoding="utf-8")
    (OUT / "data-retention.html").write_text(RETENTION_HTML, encoding="utf-8")
    (OUT / "on-call.txt").write_text(ONCALL_TXT, encoding="utf-8")
    write_pdf(OUT / "expenses.pdf", EXPENSES_PAGES)
    write_docx(OUT / "onboarding.docx")


if __name__ == "__main__":
    main()
