"""Chat rendering shared by the local backends, so that they cannot drift apart."""

from __future__ import annotations

from ragkit.types import Message


def plain_transcript(messages: list[Message]) -> str:
    """A chat as plain text, for a base model without a chat template: "Role: content" blocks, then the
    assistant's turn left open."""
    return "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in messages) + "Assistant:"
