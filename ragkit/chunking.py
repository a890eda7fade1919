"""Structure- and token-aware chunking.

Chunks never cross a section or page boundary, never exceed the embedder's window (text past it would be
silently truncated by the model and never be retrievable), and prefer to end at a paragraph, then a sentence,
then a word boundary. Every chunk is an exact slice of the document text, so citations point at real spans.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import groupby

from ragkit.types import ChunkSpan, Document, Element

CountTokens = Callable[[str], int]
TokenOffsets = Callable[[str], list[tuple[int, int]]]

_SPECIAL_TOKENS = 2  # [CLS] and [SEP] for BERT-style embedders; verified by recounting each chunk
# WordPiece reads a word longer than 100 characters as one [UNK] token, so a 5 MB run without spaces (a base64
# blob, minified code) was one token and became one 5 MB chunk. Such a token is cut into pieces of this many
# characters, and a chunk spans at most _MAX_CHARS_PER_TOKEN x max_tokens characters (English runs 4-6 per token).
_LONG_TOKEN_CHARS = 100
_MAX_CHARS_PER_TOKEN = 16


def _boundary_strength(text: str, prev_end: int, next_start: int) -> int:
    """How good a cut is between two tokens: 3 paragraph, 2 sentence, 1 word, 0 inside a word."""
    gap = text[prev_end:next_start]
    if "\n\n" in gap:
        return 3
    if not gap:
        return 0
    if "\n" in gap or text[prev_end - 1 : prev_end] in {".", "!", "?", ";", ":"}:
        return 2
    return 1 if gap.isspace() else 0


def _bounded(offsets: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """offsets with every span longer than _LONG_TOKEN_CHARS cut into pieces of at most that many characters."""
    out: list[tuple[int, int]] = []
    for start, end in offsets:
        while end - start > _LONG_TOKEN_CHARS:
            out.append((start, start + _LONG_TOKEN_CHARS))
            start += _LONG_TOKEN_CHARS
        out.append((start, end))
    return out


def split_text(
    text: str,
    offsets: Sequence[tuple[int, int]],
    count_tokens: CountTokens,
    max_tokens: int,
    overlap: int,
) -> list[tuple[int, int, int]]:
    """Cut `text` into windows of at most `max_tokens` tokens (special tokens included).

    offsets: (n,) character spans of the tokens of `text`. Returns (start, end, token_count) character spans.
    Consecutive windows share `overlap` tokens only when a cut falls inside a paragraph. A window also spans at
    most 16 characters per token of `max_tokens` (a run without spaces is cut inside, 100 characters a piece).
    """
    offsets = _bounded(offsets)
    ends = [end for _, end in offsets]
    budget = max_tokens - _SPECIAL_TOKENS
    max_chars = _MAX_CHARS_PER_TOKEN * max_tokens
    n = len(offsets)
    spans: list[tuple[int, int, int]] = []
    i = 0
    while i < n:
        j = min(i + budget, n, max(i + 1, bisect_right(ends, offsets[i][0] + max_chars, lo=i)))
        if j < n:  # pick the best cut in the second half of the window, latest among equals
            best, best_k = -1, j
            for k in range(j, i + max(1, (j - i) // 2) - 1, -1):
                strength = _boundary_strength(text, offsets[k - 1][1], offsets[k][0])
                if strength > best:
                    best, best_k = strength, k
                    if strength == 3:
                        break
            j = best_k
        start, end = offsets[i][0], offsets[j - 1][1]
        tokens = count_tokens(text[start:end])
        while tokens > max_tokens and j - i > 1:  # retokenising a slice can differ at its edges
            j -= 1
            end = offsets[j - 1][1]
            tokens = count_tokens(text[start:end])
        spans.append((start, end, tokens))
        if j >= n:
            break
        cut_is_paragraph = _boundary_strength(text, offsets[j - 1][1], offsets[j][0]) == 3
        nxt = j if cut_is_paragraph or overlap == 0 else max(j - overlap, i + 1)
        while nxt < j and _boundary_strength(text, offsets[nxt - 1][1], offsets[nxt][0]) == 0:
            nxt += 1  # start the overlap on a word, not inside one
        i = nxt
    return spans


def chunk_document(
    doc: Document,
    count_tokens: CountTokens,
    token_offsets: TokenOffsets,
    max_tokens: int,
    overlap: int,
) -> list[ChunkSpan]:
    """Chunk a parsed document: group elements by (section, page, table), then split each group by tokens."""
    chunks: list[ChunkSpan] = []
    elements: Sequence[Element] = [e for e in doc.elements if e.text.strip()]
    # a table is a block of its own, so it stays whole whenever it fits in one chunk
    block, blocks, prev_table = 0, list[int](), False
    for e in elements:
        is_table = e.kind == "Table"
        block += int(is_table or prev_table)
        blocks.append(block)
        prev_table = is_table
    keyed = zip(elements, blocks, strict=True)
    for (section, page, _), pairs in groupby(keyed, key=lambda eb: (eb[0].section, eb[0].page, eb[1])):
        group = [e for e, _ in pairs]
        g_start, g_end = group[0].start, group[-1].end
        g_text = doc.text[g_start:g_end]
        offsets = token_offsets(g_text)
        if not offsets:
            continue
        for start, end, tokens in split_text(g_text, offsets, count_tokens, max_tokens, overlap):
            lo, hi = g_start + start, g_start + end
            kinds = tuple(sorted({e.kind for e in group if e.start < hi and e.end > lo}))
            chunks.append(
                ChunkSpan(
                    text=g_text[start:end],
                    start=lo,
                    end=hi,
                    token_count=tokens,
                    page=page,
                    section=section,
                    kinds=kinds,
                )
            )
    return chunks
