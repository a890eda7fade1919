"""PDF text through pypdf, a paragraph per element with its page number."""

from __future__ import annotations

import io
import re
from typing import Any

from ragkit.connectors.light import RawElement
from ragkit.errors import ParseError

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def _opens_without_password(reader: Any) -> bool:
    """True when an encrypted PDF opens with the empty user password, as every PDF reader opens it: a PDF with only
    an owner password (restrictions on printing or copying) is readable by anyone, and common."""
    from pypdf.errors import DependencyError, PdfReadError

    try:
        return bool(reader.decrypt(""))
    except (DependencyError, NotImplementedError, PdfReadError, ValueError, KeyError):
        return False  # an unsupported cipher, or AES without the cryptography package: say it is encrypted


def pdf_elements(name: str, data: bytes) -> list[RawElement]:
    """The paragraphs of a PDF's text layer, each with its page number (from 1). ParseError, naming `name`, for a
    PDF that needs a password, is damaged, or has no text layer."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _opens_without_password(reader):
            how = "qpdf --decrypt --password=PW in.pdf out.pdf"
            raise ParseError(f"{name}: the PDF needs a password to open; decrypt it first ({how})")
        out: list[RawElement] = []
        for page_no, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            for para in _PARAGRAPH_BREAK.split(text):
                if para.strip():
                    out.append((para.strip(), "NarrativeText", page_no))
    except ParseError:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise ParseError(f"{name}: not a readable PDF ({exc})") from exc
    if not out:
        raise ParseError(f"{name}: the PDF has no extractable text (a scan? OCR is not supported yet)")
    return out
