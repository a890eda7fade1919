"""Components loaded on first use, safely from several threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """A component loaded on first use. Threads sharing one KB (eval --workers, a server) must not load a
    model twice at once: transformers' lazy init then hands one thread a half-built (meta) model; so all
    the components of a KB share one lock."""

    def __init__(self, load: Callable[[], T], lock: threading.RLock) -> None:
        self._load = load
        self._lock = lock
        self._value: T | None = None
        self._loaded = False

    def get(self) -> T:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._value = self._load()
                    self._loaded = True
        return self._value  # type: ignore[return-value]

    def set(self, value: T) -> None:
        """Use this component instead of loading one (a model already in memory, a test's fake)."""
        with self._lock:
            self._value, self._loaded = value, True

    @property
    def loaded(self) -> bool:
        return self._loaded
