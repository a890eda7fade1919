"""JSON Schema constrained decoding for the transformers backend, and validation of the result.

The token-level constraint comes from lm-format-enforcer's character-level JSON Schema parser and token
prefix tree. Its own transformers integration imports names that transformers 5 removed, so ragkit builds the
tokenizer table and the logits processor itself (the same few lines) on top of the library's core.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

from ragkit.errors import ConfigError, DependencyError, ModelError

# keyed by the tokenizer object itself (weakly): an id() can be reused by a new tokenizer after garbage collection
_tables: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_tables_lock = threading.Lock()


def check_schema(schema: Any) -> dict[str, Any]:
    """Raise ConfigError unless `schema` is a valid JSON Schema object; returns it."""
    try:
        import jsonschema
    except ImportError as exc:
        raise DependencyError("JSON Schema output needs the jsonschema package: pip install jsonschema") from exc
    if not isinstance(schema, dict):
        raise ConfigError("the JSON Schema must be a JSON object")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"invalid JSON Schema: {exc.message}") from exc
    return schema


def parse_and_validate(text: str, schema: dict[str, Any]) -> Any:
    """The JSON value in `text`, validated against `schema`; ModelError says why not."""
    import jsonschema

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"the structured answer is not complete JSON ({exc.msg} at char {exc.pos}); raise --max-tokens"
        ) from exc
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        raise ModelError(f"the structured answer does not satisfy the schema: {exc.message}") from exc
    return value


def _tokenizer_table(tokenizer: Any, stop_ids: list[int]) -> Any:
    """lm-format-enforcer's per-tokenizer prefix tree (about 1 s for a 49k vocabulary), built once per tokenizer."""
    from lmformatenforcer.tokenenforcer import TokenEnforcerTokenizerData

    key = tokenizer
    with _tables_lock:
        if key not in _tables:
            vocab = len(tokenizer)
            special = set(tokenizer.all_special_ids)
            # decoding after a "0" token keeps a word-initial space that decoding the token alone would strip
            zero = tokenizer.encode("0", add_special_tokens=False)[-1]
            regular = []
            for i in range(vocab):
                if i in special:
                    continue
                after_zero = tokenizer.decode([zero, i])[1:]
                regular.append((i, after_zero, len(after_zero) > len(tokenizer.decode([i]))))

            def decode(ids: list[int]) -> str:
                return tokenizer.decode(ids).rstrip("\ufffd")

            _tables[key] = TokenEnforcerTokenizerData(regular, decode, stop_ids, False, vocab)
        return _tables[key]


def json_schema_processor(tokenizer: Any, schema: dict[str, Any], stop_ids: list[int], prompt_len: int) -> Any:
    """A transformers LogitsProcessor that allows only tokens continuing a JSON value valid under `schema`.

    The end-of-turn tokens are allowed only once the value is complete.
    """
    try:
        from lmformatenforcer import JsonSchemaParser
        from lmformatenforcer.tokenenforcer import TokenEnforcer
    except ImportError as exc:
        raise DependencyError(
            "--schema needs lm-format-enforcer: pip install 'lm-format-enforcer>=0.11,<0.12'"
        ) from exc
    import torch
    from transformers import LogitsProcessor

    enforcer = TokenEnforcer(_tokenizer_table(tokenizer, stop_ids), JsonSchemaParser(schema))

    class _Processor(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            mask = torch.full_like(scores, float("-inf"))
            for row, ids in enumerate(input_ids.tolist()):
                # the enforcer keys its states on the generated tokens; the prompt is one shared root
                allowed = enforcer.get_allowed_tokens(ids[prompt_len - 1 :]).allowed_tokens
                mask[row, allowed] = 0.0
            return scores + mask

    return _Processor()
