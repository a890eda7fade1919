"""LoRA fine-tuning of the local GPT on RAG-formatted examples from the user's own corpus (DESIGN.md §8).

The recipe follows the factuality work on recent open models: take a snippet, ask a question about it, score
the answer against the source, and teach the model to refuse where the sources do not hold the answer.

- Questions (questions.py): chunks are sampled from the KB. The generator writes a question and answer about a
  chunk, kept only when the eval judge finds the answer supported by the chunk; sentence templates ("How often
  must production API keys be rotated?") fill in, and with a 135M model they make most of the data. A user's
  QA JSONL can replace or add to them.
- Examples (examples.py): each question becomes the prompt `ask` would build (same retrieval, template and
  packing code, `packed_prompt`) with the answer sentence cited as the target; a share of the questions also
  becomes a negative, the same question with every chunk holding the answer removed from the retrieved
  sources, whose target is the abstention phrase. The loss covers the answer tokens only (train.py).
- Output (job.py): kb/models/NAME/ holds the peft adapter, finetune.json (options, base model, training log),
  data.json (what the data was made of), train.jsonl and heldout.jsonl. Questions from held-out chunks are
  asked of the base and the tuned model through the eval runner (unanswerable ones with their supporting
  chunks left out of retrieval) and the two runs are compared (heldout.py).

The workflow sees the KB only through its public face (`KnowledgeBase` is imported for type checking only).
"""

from ragkit.finetune.examples import (
    ExampleBuilder,
    RefusalPassage,
    SftExample,
    answer_removed,
    cite,
    holds,
    refusal_passage,
    retrieve_without,
    tokenize_example,
)
from ragkit.finetune.heldout import (
    COMPARED,
    HeldOut,
    HeldOutView,
    compare_metrics,
    evaluate_heldout,
    heldout_items,
)
from ragkit.finetune.job import FinetuneResult, build_examples, build_pairs, check_name, collect_pairs, finetune
from ragkit.finetune.questions import QAPair, model_pair, read_train_file, sentences, template_pairs
from ragkit.finetune.train import (
    FinetuneOptions,
    ProgressEvent,
    ProgressFn,
    TrainLog,
    answer_loss,
    batches,
    lr_factor,
    train_lora,
)

# where adapters live: kept importable from here for code written against ragkit 0.1 (they are ragkit.kbdir's)
from ragkit.kbdir import ADAPTER_FILE, adapter_base_model, list_models, models_dir, resolve_adapter

__all__ = [
    "ADAPTER_FILE",
    "COMPARED",
    "ExampleBuilder",
    "FinetuneOptions",
    "FinetuneResult",
    "HeldOut",
    "HeldOutView",
    "ProgressEvent",
    "ProgressFn",
    "QAPair",
    "RefusalPassage",
    "SftExample",
    "TrainLog",
    "adapter_base_model",
    "answer_loss",
    "batches",
    "build_examples",
    "build_pairs",
    "check_name",
    "cite",
    "collect_pairs",
    "compare_metrics",
    "evaluate_heldout",
    "finetune",
    "heldout_items",
    "holds",
    "list_models",
    "lr_factor",
    "model_pair",
    "models_dir",
    "read_train_file",
    "answer_removed",
    "refusal_passage",
    "resolve_adapter",
    "retrieve_without",
    "sentences",
    "template_pairs",
    "tokenize_example",
    "train_lora",
]
