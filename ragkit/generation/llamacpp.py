"""llama.cpp backend (extra `ragkit[llamacpp]`): runs a .gguf file directly, quantised, with llama.cpp's kernels.

The prompt is the GGUF's own chat template rendered the way transformers renders it (llama-cpp-python's Jinja2
formatter), tokenised by llama.cpp's tokenizer with special tokens parsed, so greedy answers match the
transformers backend on the same file. Decoding runs token by token through `Llama.generate`, which keeps the
KV cache of the longest shared prompt prefix between calls (the system prompt and few-shot example).
"""

from __future__ import annotations

import codecs
import json
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from ragkit.assets import resolve_generator
from ragkit.errors import DependencyError, ModelError
from ragkit.generation.transcript import plain_transcript
from ragkit.types import Generation, Message

INSTALL_HINT = (
    "the llama.cpp backend needs the llamacpp extra: pip install 'ragkit[llamacpp]' "
    "(it compiles llama.cpp, about 17 minutes on 2 cores)"
)


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise DependencyError(INSTALL_HINT) from exc
    return llama_cpp


class LlamaCppGenerator:
    """A GGUF chat model run by llama.cpp on the CPU (all layers offloaded to a GPU when the build has one)."""

    def __init__(
        self, spec: str, *, device: str = "auto", context_window: int = 2048, threads: int | None = None
    ) -> None:
        llama_cpp = _import_llama_cpp()
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = resolve_generator(spec)
        if path.suffix != ".gguf":
            raise ModelError(f"the llama.cpp backend runs .gguf files; {path} is not one (use --generator PATH)")
        self.name = f"llamacpp:{spec}"
        try:
            self.llm = self._load(llama_cpp, str(path), context_window, threads, device)
            if self.llm._model.n_ctx_train() < context_window:  # rare: a model trained on a shorter window than asked
                self.llm = self._load(llama_cpp, str(path), self.llm._model.n_ctx_train(), threads, device)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"llama.cpp cannot load {path}: {exc}") from exc
        self.context_window = self.llm.n_ctx()
        model = self.llm._model  # token texts and end-of-generation ids live on the model wrapper
        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        template = self.llm.metadata.get("tokenizer.chat_template")
        self._format = (
            Jinja2ChatFormatter(
                template,
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "",
            )
            if template
            else None
        )
        self._is_end = lambda token: bool(llama_cpp.llama_vocab_is_eog(model.vocab, token))
        self._lock = threading.Lock()  # one llama context: one generation at a time

    @staticmethod
    def _load(llama_cpp: Any, path: str, n_ctx: int, threads: int | None, device: str) -> Any:
        return llama_cpp.Llama(
            path,
            n_ctx=n_ctx,
            # llama.cpp's own default is half the cores (1 on 2 cores); use them all like torch does
            n_threads=threads or os.cpu_count() or 1,
            n_gpu_layers=0 if device == "cpu" else -1,  # ignored by a CPU-only build
            seed=0,
            verbose=False,  # the library never prints; llama.cpp's load log goes nowhere
        )

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """The token ids `generate` feeds the model for this chat (generation prompt included)."""
        if self._format is not None:
            text = self._format(messages=messages).prompt  # type: ignore[arg-type]
            # the template writes its own BOS where the model wants one
            return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        # a base model without a chat template gets a plain transcript, as in the transformers backend
        text = plain_transcript(messages)
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens of the rendered chat prompt by llama.cpp's tokenizer, generation prompt included."""
        return len(self.prompt_ids(messages))

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: Callable[[str], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Generation:
        """Complete the chat with llama.cpp; see Generator.generate. A schema becomes a llama.cpp GBNF grammar."""
        prompt = self.prompt_ids(messages)
        if len(prompt) + max_new_tokens > self.context_window:
            raise ModelError(
                f"the prompt ({len(prompt)} tokens) and answer budget ({max_new_tokens}) exceed the llama.cpp "
                f"context of {self.context_window} tokens; lower --max-tokens or k"
            )
        grammar = None
        if schema is not None:
            from llama_cpp.llama_grammar import LlamaGrammar

            try:
                grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            except Exception as exc:  # the converter raises plain errors for schema features it lacks
                raise ModelError(f"llama.cpp cannot turn this JSON Schema into a grammar: {exc}") from exc
        # greedy at 0; otherwise top-p 0.95 as the transformers backend samples, with only top-k/min-p switched off
        sampling: dict[str, Any] = {"temp": 0.0}
        if temperature > 0:
            sampling = {"temp": temperature, "top_p": 0.95, "top_k": 0, "min_p": 0.0}
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two tokens
        text, n_new, finish = "", 0, "length"
        with self._lock:
            if temperature > 0:
                self.llm.set_seed(random.getrandbits(31))  # fresh draws per call: self-consistency samples differ
            t0 = time.perf_counter()
            for token in self.llm.generate(prompt, repeat_penalty=1.0, grammar=grammar, **sampling):
                n_new += 1  # the end-of-turn token counts, as in the transformers backend
                if self._is_end(token):
                    finish = "stop"
                    break
                piece = decoder.decode(self.llm.detokenize([token]))
                if not text:
                    piece = piece.lstrip()  # the chat template's generation prompt ends before the first space
                if piece:
                    text += piece
                    if on_text is not None:
                        on_text(piece)
                if stop is not None and stop(text):
                    finish = "rule"
                    break
                if n_new >= max_new_tokens:
                    break
            seconds = time.perf_counter() - t0
        tail = decoder.decode(b"", final=True)
        if tail and on_text is not None:
            on_text(tail)
        return Generation(
            text=(text + tail).strip(),
            prompt_tokens=len(prompt),
            completion_tokens=n_new,
            seconds=seconds,
            finish=finish,
        )
