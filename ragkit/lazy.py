"""Components loaded on first use, safely from several threads."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
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


class ReadWriteLock:
    """Many readers or one writer, writers first: searches share the FAISS index, a write (ingest, delete)
    waits for the searches in flight and holds new ones back until it is done."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._waiting_writers = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()
