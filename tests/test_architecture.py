"""The engine/workflow rule (REDESIGN.md §6), read from the sources with `ast`: no ragkit code is imported or run.

The engine (store, ingest, answering, prompts, indexes, generation, ...) knows nothing of the workflows (evals,
finetune, cli) or the facade; the workflows reach the facade only as a type; SQL stays in the store; no module
outgrows 400 lines. Imports inside functions count; imports under `if TYPE_CHECKING:` count only as types.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The engine is every module of ragkit/ but the facade, its opener, the package root and the test fakes, and every
# package but the workflows': a new module is covered without being listed.
_NOT_ENGINE = {"__init__", "api", "opening", "testing"}
ENGINE_MODULES = sorted(p.stem for p in (ROOT / "ragkit").glob("*.py") if p.stem not in _NOT_ENGINE)
ENGINE_PACKAGES = tuple(
    sorted(
        p.name
        for p in (ROOT / "ragkit").iterdir()
        if (p / "__init__.py").exists() and p.name not in ("evals", "finetune", "cli", "server")
    )
)
WORKFLOWS = ("ragkit.evals", "ragkit.finetune", "ragkit.cli", "ragkit.server", "ragkit.api")
MAX_LINES = 400


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. "ragkit.indexes.retriever"
    target: str  # a ragkit module ("ragkit.indexes" is ragkit/indexes/__init__.py) or an outside top-level package
    line: int
    runtime: bool  # False under `if TYPE_CHECKING:`
    top: bool = True  # runs on import (not inside a function)

    def __str__(self) -> str:
        return f"{self.source}:{self.line} -> {self.target}{'' if self.runtime else ' (TYPE_CHECKING)'}"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_modules(root: Path = ROOT) -> dict[str, tuple[Path, str]]:
    """{module name: (path, source)} for every module under ragkit/."""
    return {module_name(p, root): (p, p.read_text(encoding="utf-8")) for p in sorted((root / "ragkit").rglob("*.py"))}


def parse_imports(name: str, source: str, is_package: bool, modules: Iterable[str]) -> list[Import]:
    """Every import statement in `source`, module- and function-level, relative ones resolved."""
    known = set(modules)
    package = name if is_package else name.rpartition(".")[0]

    def resolve(dotted: str) -> str:  # ragkit.x.y -> the module itself, or its longest known prefix
        if not _in(dotted, ["ragkit"]):
            return dotted.partition(".")[0]  # an outside package by its top-level name
        while dotted not in known and "." in dotted:
            dotted = dotted.rpartition(".")[0]
        return dotted

    found: list[Import] = []

    def visit(node: ast.AST, runtime: bool, top: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, False, top)
            for child in node.orelse:
                visit(child, runtime, top)
            return
        top = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        if isinstance(node, ast.Import):
            found.extend(Import(name, resolve(a.name), node.lineno, runtime, top) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # `from ragkit.x import y` imports the module ragkit.x.y when there is one
                sub = f"{base}.{alias.name}"
                found.append(Import(name, sub if sub in known else resolve(base), node.lineno, runtime, top))
        for child in ast.iter_child_nodes(node):
            visit(child, runtime, top)

    visit(ast.parse(source), True, True)
    return [i for i in dict.fromkeys(found) if i.target != name]  # `from x import a, b`: one edge


def all_imports(modules: Mapping[str, tuple[Path, str]]) -> list[Import]:
    return [
        imp
        for name, (path, source) in modules.items()
        for imp in parse_imports(name, source, path.name == "__init__.py", modules)
    ]


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of a directed graph, each sorted; singletons included."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            out.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


# -- the rules: each returns its offenders, one line each ----------------------------------------------------------


def cycles(imports: list[Import]) -> list[str]:
    graph: dict[str, set[str]] = {}
    for i in imports:
        if i.runtime and _in(i.target, ["ragkit"]):
            graph.setdefault(i.source, set()).add(i.target)
    bad = [c for c in strongly_connected(graph) if len(c) > 1]
    edges = lambda c: "".join(f"\n  {i}" for i in imports if i.runtime and {i.source, i.target} <= set(c))  # noqa: E731
    return [f"{c}:{edges(c)}" for c in bad]


def _in(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def engine_reaches_workflows(imports: list[Import]) -> list[str]:
    engine = [f"ragkit.{m}" for m in ENGINE_MODULES] + [f"ragkit.{p}" for p in ENGINE_PACKAGES]
    return [str(i) for i in imports if _in(i.source, engine) and _in(i.target, WORKFLOWS)]


def workflows_import_the_facade_at_runtime(imports: list[Import]) -> list[str]:
    workflows = ("ragkit.evals", "ragkit.finetune", "ragkit.server")
    return [str(i) for i in imports if _in(i.source, workflows) and i.target == "ragkit.api" and i.runtime]


def sql_outside_the_store(imports: list[Import]) -> list[str]:
    # type-only imports (an annotation such as protocols.py's `Select`) cannot run SQL; connectors/sql.py reads the
    # user's own source database (a connector), never the KB's
    allowed = ("ragkit.store", "ragkit.indexes", "ragkit.connectors.sql")
    return [str(i) for i in imports if i.target == "sqlalchemy" and i.runtime and not _in(i.source, allowed)]


def facade_importers(imports: list[Import]) -> list[str]:
    allowed = lambda source: source in ("ragkit", "ragkit.opening") or _in(source, ["ragkit.cli"])  # noqa: E731
    return [str(i) for i in imports if i.target == "ragkit.api" and i.runtime and not allowed(i.source)]


def loaded_on_import(imports: list[Import], module: str) -> set[str]:
    """What `import module` runs: module-level runtime imports, followed, with every ragkit parent package."""
    edges: dict[str, set[str]] = {}
    for i in imports:
        if i.runtime and i.top:
            edges.setdefault(i.source, set()).add(i.target)
    seen: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        parents = [m.rsplit(".", n)[0] for n in range(1, m.count(".") + 1)] if _in(m, ["ragkit"]) else []
        todo += [*edges.get(m, ()), *parents]
    return seen


def heavy_fakes(imports: list[Import]) -> list[str]:
    heavy = ("sqlalchemy", "torch", "transformers", "sentence_transformers", "faiss", *WORKFLOWS)
    return sorted(m for m in loaded_on_import(imports, "ragkit.testing") if _in(m, heavy))


def line_counts(modules: Mapping[str, tuple[Path, str]]) -> dict[str, int]:
    """{module: lines}, longest first."""
    counts = {name: len(source.splitlines()) for name, (_, source) in modules.items()}
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def long_modules(modules: Mapping[str, tuple[Path, str]]) -> list[str]:
    return [f"{m}: {n} lines" for m, n in line_counts(modules).items() if n > MAX_LINES and not _in(m, ["ragkit.cli"])]


MODULES = read_modules()
IMPORTS = all_imports(MODULES)


# -- the checks on ragkit/ ---------------------------------------------------------------------------------------


def test_no_import_cycles() -> None:
    bad = cycles(IMPORTS)
    assert not bad, "import cycles (module- and function-level imports):\n" + "\n".join(bad)


def test_the_engine_imports_no_workflow_and_not_the_facade() -> None:
    bad = engine_reaches_workflows(IMPORTS)
    assert not bad, "engine modules import evals/finetune/cli/api:\n" + "\n".join(bad)


def test_workflows_import_the_facade_only_as_a_type() -> None:
    bad = workflows_import_the_facade_at_runtime(IMPORTS)
    assert not bad, "evals/finetune import ragkit.api at run time (use TYPE_CHECKING):\n" + "\n".join(bad)


def test_sqlalchemy_only_in_the_store_and_indexes() -> None:
    bad = sql_outside_the_store(IMPORTS)
    assert not bad, "sqlalchemy imported outside ragkit/store.py and ragkit/indexes/:\n" + "\n".join(bad)


def test_modules_stay_under_400_lines() -> None:
    bad = long_modules(MODULES)
    assert not bad, f"modules over {MAX_LINES} lines (outside ragkit/cli/):\n" + "\n".join(bad)


def test_the_fakes_load_no_database_model_or_workflow() -> None:
    bad = heavy_fakes(IMPORTS)
    assert not bad, "import ragkit.testing loads:\n" + "\n".join(bad)


def test_only_the_package_and_the_cli_import_the_facade() -> None:
    bad = facade_importers(IMPORTS)
    assert not bad, (
        "ragkit.api imported at run time outside ragkit/__init__.py, ragkit/opening.py and ragkit/cli/:\n"
        + "\n".join(bad)
    )


# -- the checks can fail -----------------------------------------------------------------------------------------


def test_the_cycle_finder_on_a_hand_made_graph() -> None:
    graph = {"a": ["b"], "b": ["c", "d"], "c": ["a"], "d": ["e"], "e": ["d"], "f": ["f", "a"]}
    assert sorted(strongly_connected(graph)) == [["a", "b", "c"], ["d", "e"], ["f"]]
    assert strongly_connected({"a": ["b"], "b": []}) == [["b"], ["a"]]


def test_every_rule_finds_a_planted_offender(tmp_path: Path) -> None:
    sources = {
        "ragkit/__init__.py": "from ragkit.api import open_kb\n",
        "ragkit/api.py": "def f():\n    from . import store\n",
        "ragkit/store.py": "import sqlalchemy\nfrom ragkit.indexes import sql_store\n",
        "ragkit/indexes/__init__.py": "",
        "ragkit/indexes/sql_store.py": "from sqlalchemy import text\nfrom ..api import KnowledgeBase\n",
        "ragkit/evals/__init__.py": "import typing\nif typing.TYPE_CHECKING:\n    from ragkit.api import A, B\n",
        "ragkit/evals/runner.py": "import ragkit.api\nfrom sqlalchemy.orm import Session\n" + "x = 1\n" * 400,
        "ragkit/testing.py": "import numpy\nfrom ragkit.evals.runner import run\ndef f():\n    import torch\n",
    }
    for rel, text in sources.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    modules = read_modules(tmp_path)
    imports = all_imports(modules)
    assert "ragkit.evals:3 -> ragkit.api (TYPE_CHECKING)" in map(str, imports)
    assert [c.split(":")[0] for c in cycles(imports)] == ["['ragkit.api', 'ragkit.indexes.sql_store', 'ragkit.store']"]
    assert engine_reaches_workflows(imports) == ["ragkit.indexes.sql_store:2 -> ragkit.api"]
    assert workflows_import_the_facade_at_runtime(imports) == ["ragkit.evals.runner:1 -> ragkit.api"]
    assert sql_outside_the_store(imports) == ["ragkit.evals.runner:2 -> sqlalchemy"]
    assert str(imports[0]) == "ragkit:1 -> ragkit.api" and len(imports) == len(set(imports))
    assert long_modules(modules) == ["ragkit.evals.runner: 402 lines"]
    assert heavy_fakes(imports) == ["ragkit.api", "ragkit.evals", "ragkit.evals.runner", "sqlalchemy"]
    assert sorted(facade_importers(imports)) == [
        "ragkit.evals.runner:1 -> ragkit.api",
        "ragkit.indexes.sql_store:2 -> ragkit.api",
    ]


def test_the_parser_sees_the_real_package() -> None:
    assert len(MODULES) > 30 and "ragkit.indexes.faiss_index" in MODULES
    assert any(i.source == "ragkit" and i.target == "ragkit._version" and i.runtime for i in IMPORTS)
    assert any(i.target == "numpy" for i in IMPORTS) and not any(i.target.startswith(".") for i in IMPORTS)
