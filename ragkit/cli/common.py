"""What every ragkit command shares: the consoles, exit codes, common options, error handling, JSON output."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import HAS_RICH, TyperArgument, TyperGroup

from ragkit.errors import RagkitError, UsageError
from ragkit.fsutil import storage_problem
from ragkit.types import DTYPES

# README's table: 0 success; 1 error; 2 usage error (ours, like click's for a bad option); 3 partial; 130 Ctrl-C
EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 1, 2, 3, 130
MODES = ("hybrid", "dense", "keyword")
HELP_NAMES = ["-h", "--help"]

# C0 and C1 control characters but tab and newline: an ESC in a document's text or name, or in an answer copied
# from one, would reach the terminal as an escape sequence (colours, cursor moves, the window title)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class _SafeConsole(Console):
    """A rich Console whose print drops terminal control characters from the strings it is given."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(_CONTROL.sub("", o) if isinstance(o, str) else o for o in objects), **kwargs)


out = _SafeConsole(highlight=False, soft_wrap=True)
err = _SafeConsole(stderr=True, highlight=False, soft_wrap=True)

KbOpt = Annotated[
    Path,
    typer.Option("--kb", envvar="RAGKIT_KB", help="Knowledge base directory (env RAGKIT_KB).", show_default=True),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="RAGKIT_DB",
        help="Database URL, e.g. postgresql+psycopg://USER@HOST/DB (extra ragkit[pg]); a new KB records it, so "
        "later commands find it without --db [default: the KB's SQLite file] (env RAGKIT_DB).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text (for scripts).")]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="Where the FAISS index searches: auto (GPU when a FAISS GPU build sees one), cpu or gpu [default: config]",
    ),
]


class RagkitGroup(TyperGroup):
    """The root command group (`typer.Typer(cls=RagkitGroup)`): makes every command's help plain on build.

    - help texts are shown as written: "ragkit[pg]" and "[default: config]" are not taken for rich markup;
    - flags (--json, --strict, -h/--help) show no type metavar ("--json <bool>" read as if it took a value);
    - arguments are named in capitals in the usage line and the Arguments panel (QUERY, SOURCES...).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _plain_help(self)


def _plain_help(cmd: Any) -> None:
    if getattr(cmd, "_ragkit_plain_help", False):
        return
    cmd._ragkit_plain_help = True
    help_option = cmd.get_help_option(typer.Context(cmd, help_option_names=HELP_NAMES))
    for param in [*cmd.params, *([help_option] if help_option is not None else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if isinstance(param, TyperArgument) and param.metavar is None and param.name:
            param.metavar = param.name.upper()
        if HAS_RICH and getattr(param, "help", None):
            param.help = escape(param.help)
    for sub in getattr(cmd, "commands", {}).values():
        _plain_help(sub)


def parse_device(device: str) -> str:
    """auto | cpu | gpu (FAISS's word) | cuda (torch's) -> the config value auto | cpu | cuda."""
    value = {"gpu": "cuda", "cuda": "cuda", "cpu": "cpu", "auto": "auto"}.get(device.strip().lower())
    if value is None:
        raise UsageError(f"--device takes auto, cpu or gpu, not {device!r}")
    return value


ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode",
        help="Retrieval: hybrid (dense + keyword), dense or keyword [default: retrieval.mode of ragkit.toml: keyword "
        "for a KB made for Qwen2.5-Coder-1.5B, else hybrid]",
    ),
]


def parse_mode(mode: str | None) -> str | None:
    """--mode: hybrid | dense | keyword, any case; None keeps the configured one."""
    if mode is None:
        return None
    if mode.strip().lower() not in MODES:
        raise UsageError(f"--mode takes hybrid, dense or keyword, not {mode!r}")
    return mode.strip().lower()


def non_empty(value: str, what: str) -> str:
    """A QUERY or QUESTION argument that is not blank (a usage error otherwise)."""
    if not value.strip():
        raise UsageError(f"the {what} is empty; give some words to look for")
    return value


def device_override(device: str | None) -> dict[str, str]:
    """--device as the index.device config override (none when not given)."""
    return {} if device is None else {"index.device": parse_device(device)}


@contextmanager
def user_errors() -> Iterator[None]:
    """Show ragkit errors as one red line and exit 2 (UsageError) or 1; Ctrl-C exits 130. Real bugs keep their
    traceback. Under a command run with --json, the error is also one JSON object on stdout (`fail`)."""
    try:
        yield
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE)
    except RagkitError as exc:
        fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        fail("Interrupted.", EXIT_INTERRUPTED)
    except Exception as exc:  # a full or read-only disk under a command that writes outside the KB lock (eval runs)
        message = storage_problem(exc)
        if message is None:
            raise
        fail(message, EXIT_ERROR)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print `Error: message` in red on stderr, and `{"error": message, "exit_code": code}` on stdout when the
    running command has --json (so a script's json.load never meets an empty stdout); then exit with code."""
    text = message if code == EXIT_INTERRUPTED else f"Error: {message}"
    # escaped: messages hold brackets that are not markup, e.g. pip install 'ragkit[pg]'
    err.print(f"[red]{escape(text)}[/red]", markup=True, highlight=False)
    if json_requested():
        typer.echo(json.dumps({"error": message, "exit_code": code}, ensure_ascii=False))
    raise typer.Exit(code) from None


def json_requested() -> bool:
    """Whether the command being run was given --json (its `as_json` parameter)."""
    try:  # typer >= 0.29 carries its own click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - an older typer on the real click
        from click import get_current_context
    ctx = get_current_context(silent=True)
    return bool(ctx is not None and ctx.params.get("as_json"))


def display(uri: str) -> str:
    """File paths under the working directory are shown relative to it; URLs and sql: uris as they are."""
    if not uri.startswith("/"):
        return uri
    rel = os.path.relpath(uri)
    return uri if rel.startswith("..") else rel


def plural(count: int, noun: str) -> str:
    """'1 chunk', '2 chunks', '1,234 files' (nouns that take an s)."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def failure_reason(uri: str, reason: str) -> str:
    """A failure's reason without the file name it starts with ("a.txt: empty file" -> "empty file"), for a line
    that names the file already ("skipped a.txt: empty file")."""
    for name in (uri, display(uri), uri.rstrip("/").rsplit("/", 1)[-1]):
        if name and reason.startswith(name + ": "):
            return reason[len(name) + 2 :]
    return reason


def db_override(url: str | None) -> dict[str, Any]:
    """The --db override for ragkit.open (none when not given, so the KB's recorded database is used)."""
    return {"database_url": url} if url else {}


def print_json(data: Any) -> None:
    """One JSON document on stdout; typed reports (anything with to_json()) print as their dict."""
    if hasattr(data, "to_json"):
        data = data.to_json()
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def progress_bar(label: str, quiet: bool = False) -> Progress:
    """A transient progress bar on stderr; none with --json or outside a terminal (logs, pipes)."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=True,
    )


@contextmanager
def announce_stop(message: str) -> Iterator[None]:
    """While the block runs, the first Ctrl-C or SIGTERM prints `message` on stderr and stops the work as Ctrl-C
    does: stopping can take seconds while the work in flight is saved, and a silent wait reads as a hang. A second
    Ctrl-C stops at once; a second SIGTERM ends the process. A signal the shell ignores (a background job's
    SIGINT) stays ignored. Main thread only (elsewhere the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    told = False

    def stopping(signum: int, frame: object) -> None:
        nonlocal told
        if signum == signal.SIGTERM:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if not told:
            told = True
            err.print(message, style="yellow", markup=False)
        raise KeyboardInterrupt

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for sig, handler in saved.items():
        if handler is not signal.SIG_IGN:
            signal.signal(sig, stopping)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if signal.getsignal(sig) is stopping and handler is not None:
                signal.signal(sig, handler)


def plain_progress(label: str, quiet: bool = False, every_s: float = 30.0) -> Callable[[int, int | None], None]:
    """Where the progress bar does not show (stderr is a log, a pipe, CI, nohup), a plain line on stderr at most
    every `every_s` seconds, so a long run is seen to move: "Ingesting: 120 of 1,030 (4 min 10 s)". A no-op on a
    terminal or with --json. Call it with (done, total)."""
    start = last = time.monotonic()

    def report(done: int, total: int | None) -> None:
        nonlocal last
        now = time.monotonic()
        if quiet or err.is_terminal or now - last < every_s:
            return
        last = now
        minutes, seconds = divmod(int(now - start), 60)
        of = f" of {total:,}" if total else ""
        err.print(f"{label}: {done:,}{of} ({minutes} min {seconds} s)", markup=False, highlight=False)

    return report


GeneratorOpt = Annotated[
    str | None,
    typer.Option(
        "--generator",
        help="'openai:URL' for an OpenAI-compatible server (e.g. openai:http://127.0.0.1:8000/v1), "
        "'llamacpp:GGUF' (a .gguf path or bundled name, run by llama.cpp; extra ragkit[llamacpp]), or a local "
        "model (bundled name, transformers directory, .gguf) [default: config]",
    ),
]


def _one_of(value: str | None, allowed: tuple[str, ...]) -> str | None:
    """An option's value, checked against its choices (a usage error, exit 2, names them)."""
    if value is not None and value not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}")
    return value


DtypeOpt = Annotated[
    str | None,
    typer.Option(
        "--dtype",
        callback=lambda value: _one_of(value, DTYPES),
        help="The local generator's weights and arithmetic: auto (bf16 on a GPU, and for Qwen2.5-Coder-1.5B on a "
        "CPU with bf16 units; else float32), float32, bfloat16 (slow on a CPU without bf16 units), float16 (GPU "
        "only) [default: config's generator.dtype]",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="A fine-tuned model of this KB (ragkit models), or the model name to request from the --generator server.",
    ),
]
# a panel of its own: the second opinion's options are read together, and its columns do not widen Options'
FALLBACK_PANEL = "Second opinion"
FallbackOpt = Annotated[
    str | None,
    typer.Option(
        "--fallback",
        help="A second model asked only when the checks withhold the first one's answer (a bundled name, a "
        "transformers directory or .gguf); 'none' asks no second model [default: config's generator.fallback]",
        rich_help_panel=FALLBACK_PANEL,
    ),
]
MinVerifiedOpt = Annotated[
    float | None,
    typer.Option(
        "--min-verified",
        min=0.0,
        max=1.0,
        help="With a --fallback model: withhold the first model's answer when the fallback's probability that the "
        "sources state it is below this, and let the fallback answer; 0 turns it off [default: config: off; 0.72 "
        "was measured for Qwen2.5-Coder-1.5B reading Qwen 0.5B's answers]",
        rich_help_panel=FALLBACK_PANEL,
    ),
]
FallbackMinVerifiedOpt = Annotated[
    float | None,
    typer.Option(
        "--fallback-min-verified",
        min=0.0,
        max=1.0,
        help="With a --fallback model: withhold the fallback's own answer when its probability that the sources "
        "state it is below this; 0 turns it off [default: config; 0.5 for Qwen2.5-Coder-1.5B, off for other models]",
        rich_help_panel=FALLBACK_PANEL,
    ),
]


OwnMinVerifiedOpt = Annotated[
    float | None,
    typer.Option(
        "--own-min-verified",
        min=0.0,
        max=1.0,
        help="Without a fallback: the generator reads its own answer and withholds it when its probability that "
        "the sources state it is below this; 0 turns it off [default: config: off; 0.5 was measured for "
        "Qwen2.5-Coder-1.5B]",
        rich_help_panel=FALLBACK_PANEL,
    ),
]


ReleaseMinVerifiedOpt = Annotated[
    float | None,
    typer.Option(
        "--release-min-verified",
        min=0.0,
        max=1.0,
        help="Without a fallback: when only the coverage check withheld the answer (its source sentence does not "
        "repeat the question's words), the generator reads it and delivers it when its probability that the "
        "sources state it reaches this; 0 turns it off [default: config; the floor measured for the generator]",
        rich_help_panel=FALLBACK_PANEL,
    ),
]


def fallback_overrides(
    min_verified: float | None,
    fallback_min_verified: float | None,
    own_min_verified: float | None = None,
    release_min_verified: float | None = None,
) -> dict[str, float]:
    """Config overrides for --min-verified / --fallback-min-verified / --own-min-verified /
    --release-min-verified (None: the config's)."""
    given = {
        "generator.min_verified": min_verified,
        "generator.fallback_min_verified": fallback_min_verified,
        "generator.own_min_verified": own_min_verified,
        "generator.release_min_verified": release_min_verified,
    }
    return {k: v for k, v in given.items() if v is not None}


# -- who reads: --as NAME --groups G1,G2 --admin on every command that reads chunks (ragkit.access) --------------

ACCESS_PANEL = "Access control"  # a panel of its own: its columns do not widen the Options table's
AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Read as this user: an access-controlled KB shows only the documents granted to them, their groups "
        "or public. The CLI trusts the name (for operators and testing).",
        rich_help_panel=ACCESS_PANEL,
        show_default=False,
    ),
]
GroupsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--groups",
        help="The --as user's groups, comma-separated (hr,staff); repeatable.",
        rich_help_panel=ACCESS_PANEL,
        show_default=False,
    ),
]
AdminOpt = Annotated[
    bool,
    typer.Option(
        "--admin",
        help="Read every document as an admin; recorded in the KB's audit log (ragkit acl log) under --as NAME "
        "[default: the OS user].",
        rich_help_panel=ACCESS_PANEL,
    ),
]


def reader(name: str | None, groups: list[str] | None, admin: bool) -> Any:
    """--as / --groups / --admin as the Principal a read runs as (None when none is given). A malformed name is
    a usage error (exit 2), like any other bad flag value."""
    from ragkit.access import default_actor, principal_from
    from ragkit.errors import AccessError

    if admin and name is None:
        name = default_actor()
        if not _valid_name(name):
            name = "admin"  # an OS user name the audit log cannot hold (e.g. DOMAIN\\user)
    try:
        return principal_from(name, groups or [], admin=admin)
    except AccessError as exc:
        raise UsageError(f"--as/--groups: {exc}") from None


def grants(texts: list[str] | None, flag: str) -> tuple[str, ...]:
    """GRANT options (group:NAME, user:NAME, public; comma-separated or repeated) as stored tokens; anything
    else is a usage error naming the flag."""
    from ragkit.access import grant_tokens
    from ragkit.errors import AccessError

    try:
        return grant_tokens(texts or [])
    except (AccessError, UsageError) as exc:
        raise UsageError(str(exc).replace("(e.g. --allow ", f"(e.g. {flag} ")) from None


def _valid_name(name: str) -> bool:
    from ragkit.access import Principal
    from ragkit.errors import AccessError

    try:
        Principal(name)
    except AccessError:
        return False
    return True


def check_reader(base: Any, principal: Any, quiet: bool = False) -> None:
    """Refuse at once a read of an access-controlled KB that names no reader (a run of many reads, such as eval,
    would otherwise record the refusal once per question); a dim note when --as/--admin is given for a KB without
    access control (every reader sees everything)."""
    if principal is None:
        base.acl.scope(None)  # raises AccessError when the KB is access-controlled; nothing is recorded
    elif not quiet:
        note_without_access_control(
            base,
            "--as/--admin change nothing (every reader sees every document); create a KB with ragkit ingest "
            "--access-control",
        )


def first_use(generator: str, quiet: bool = False, stored: str | None = "float32") -> None:
    """A dim note before a bundled generator's first use, which joins and converts it first (minutes, not
    seconds): without it the first answer looks hung. stored: the dtype of the checkpoint it is converted to
    (ragkit.assets.run_dtypes), None for a backend that reads the GGUF itself."""
    from ragkit.assets import first_use_note

    note = None if quiet else first_use_note(generator, stored)
    if note:
        err.print(note, style="dim", markup=False)


def _stored_dtype(section: Any, spec: str) -> str | None:
    """The dtype of the checkpoint the generator section's backend converts bundled `spec` to (see first_use)."""
    from ragkit.assets import GENERATORS, planned_dtypes

    if section.backend != "transformers":
        return None
    if spec not in GENERATORS:
        return "float32"  # no note for a local model anyway; nothing to import
    planned = planned_dtypes(spec, section.dtype, section.device)
    return planned[1] if planned else "float32"  # a setting that cannot run here: loading says why


def first_use_of_models(generator: Any, quiet: bool = False) -> None:
    """first_use for the generator section's model and its fallback. A fallback that cannot load (a typo, a
    bundled model not installed) fails here, not at the first draft the checks withhold, which may be much later."""
    if not quiet:  # only the note needs the dtype, and resolving it imports torch
        for spec in filter(None, (generator.model, generator.fallback)):
            first_use(spec, stored=_stored_dtype(generator, spec))
    if generator.fallback and generator.backend in ("transformers", "llamacpp"):
        from ragkit.assets import resolve_generator

        resolve_generator(generator.fallback)


def check_model_option(base: Any, model: str | None) -> None:
    """--model names an adapter of this KB, or a model the generator can load; else one red line that lists the
    KB's fine-tuned models beside the bundled ones (the engine's message knows only the latter)."""
    from ragkit.errors import ConfigError, ModelError
    from ragkit.kbdir import is_adapter_name, list_adapters

    g = base.config.generator
    if not model or g.backend == "openai" or is_adapter_name(base.root, model) or g.model != model:
        return
    from ragkit.assets import resolve_generator

    try:
        resolve_generator(model)
    except ModelError as exc:
        names = ", ".join(a.name for a in list_adapters(base.root)) or "none yet; `ragkit finetune` makes them"
        mine = f"--model {model!r} is not a fine-tuned model of this KB (its models: {names})"
        raise ConfigError(f"{mine}; {exc}") from exc


def note_without_access_control(base: Any, consequence: str) -> None:
    """A dim note, on a KB without access control, that an access option does less than it says (consequence)."""
    if not base.acl.enabled:
        err.print(f"note: {base.root} has no access control, so {consequence}", style="dim", markup=False)


def read_scope(base: Any) -> Any:
    """The principal the store should restrict a count to, without auditing another admin read: None when the KB
    has no access control or the reader is an admin (they see everything), else the reader."""
    principal = base.principal
    if not base.acl.enabled:
        return None
    if principal is None:
        return base.acl.scope(None)  # refuses: an access-controlled KB is never counted for nobody
    return None if principal.admin else principal
