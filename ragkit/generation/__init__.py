"""Local GPT backends. The transformers/torch backend is the default."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}


@dataclass(frozen=True, slots=True)
class Generation:
    """One completion with its token counts and wall time in seconds."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finish: str = "stop"  # "stop": end of turn; "length": token limit; "rule": the caller's stop rule fired


class Generator(Protocol):
    """A chat model that completes a list of messages."""

    name: str
    context_window: int  # tokens the prompt and the answer share

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens of the rendered chat prompt, generation prompt included."""
        ...

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: Callable[[str], bool] | None = None,
    ) -> Generation:
        """Complete the chat; greedy when temperature is 0.

        Stops at the end of the assistant's turn, after max_new_tokens, or when stop(text so far) is True.
        """
        ...
