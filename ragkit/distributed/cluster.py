"""Connecting to a Ray cluster, the guards a distributed run needs, and how many actors of each kind."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragkit.errors import ConfigError, DependencyError
from ragkit.runtime import RuntimeSettings

if TYPE_CHECKING:
    from ragkit.store import Store

# environment every worker needs: models come from local folders, never a hub
_WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def import_ray() -> Any:
    """Import Ray, or say which extra provides it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the pipeline API (extra ray[data])
    except ImportError as exc:
        raise DependencyError("--ray needs Ray: pip install 'ragkit[ray]' (ray[data] >= 2.51)") from exc
    return ray


def require_shared_database(store: Store) -> str:
    """The database URL workers connect to (password included); a SQLite KB is refused with the reason."""
    if store.backend != "postgresql":
        raise ConfigError(
            "--ray needs a PostgreSQL database (--db postgresql+psycopg://...): Ray workers on other machines "
            "write to it, and SQLite is a file on one machine with one writer"
        )
    return str(store.engine.url.render_as_string(hide_password=False))


def worker_env() -> dict[str, str]:
    """Environment variables for Ray workers: offline model loading, plus this process's RAGKIT_* settings."""
    env = dict(_WORKER_ENV)
    env.update({k: v for k, v in os.environ.items() if k.startswith("RAGKIT_")})
    return env


@contextlib.contextmanager
def connected(settings: RuntimeSettings) -> Iterator[Any]:
    """Ray, connected: to an already initialised session, to settings.address (or $RAY_ADDRESS), or to a new
    local cluster that is shut down afterwards."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    address = settings.address or os.environ.get("RAY_ADDRESS") or None
    ray.init(
        address=address,
        runtime_env={"env_vars": worker_env()},
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class Sizing:
    """Actors and the logical CPUs/GPUs each asks for, from the cluster's resources."""

    nodes: int
    cpus: float
    gpus: float
    parse_actors: int
    embed_actors: int
    write_actors: int
    parse_cpus: float
    embed_cpus: float
    embed_gpus: float
    write_cpus: float


def sizing(ray: Any, s: RuntimeSettings) -> Sizing:
    """One parse and one embed actor per node by default (one embed actor per GPU when there are GPUs).

    CPU requests are logical (an actor's torch uses one thread per requested CPU, at least one): they are sized
    so that every pool fits on the smallest node, so when a node dies its actors can restart on any survivor
    (Ray Data spreads actors over the nodes while they are all alive)."""
    res = ray.cluster_resources()
    alive = [n for n in ray.nodes() if n.get("Alive")]
    nodes = max(1, len(alive))
    cpus, gpus = float(res.get("CPU", 1.0)), float(res.get("GPU", 0.0))
    smallest = min((float(n.get("Resources", {}).get("CPU", 0.0)) for n in alive), default=cpus) or cpus
    parse = s.parse_actors or nodes
    embed = s.embed_actors or (int(gpus) if gpus >= 1 else nodes)
    write = s.write_actors
    # what is left after the writers (light: they wait on PostgreSQL) is shared by parse and embed actors
    write_cpus = 0.05
    spare = max(0.2, 0.9 * smallest - write * write_cpus)
    share = spare / (parse + (0 if gpus >= 1 else embed))
    return Sizing(
        nodes=nodes,
        cpus=cpus,
        gpus=gpus,
        parse_actors=parse,
        embed_actors=embed,
        write_actors=write,
        parse_cpus=round(min(1.0, share), 2),
        embed_cpus=round(min(1.0, share), 2) if gpus < 1 else 1.0,
        embed_gpus=1.0 if gpus >= 1 else 0.0,
        write_cpus=write_cpus,
    )


def _missing(paths: list[str]) -> list[str]:
    return [p for p in paths if not os.access(p, os.R_OK)]


def check_visible(ray: Any, paths: list[str], sample: int = 3) -> None:
    """Refuse to start when a node cannot read the sources: each parse actor reads its files by path, so every
    node must mount them at the same path. One tiny task per node checks a few of them (first, middle, last)."""
    if not paths:
        return
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    picked = sorted({paths[0], paths[len(paths) // 2], paths[-1]})[:sample]
    probe = ray.remote(num_cpus=0, max_retries=1)(_missing)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = [
        probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(picked)
        for n in nodes
    ]
    for node, missing in zip(nodes, ray.get(refs), strict=True):
        if missing:
            raise ConfigError(
                f"--ray: node {node.get('NodeManagerAddress', node['NodeID'])} cannot read {missing[0]}; every node "
                "must see the sources at the same path (a shared filesystem), as the workers read them by path"
            )
