"""A least-recently-used cache of loaded models, bounded by a memory budget in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class FileStamp:
    """Identifies a file's content cheaply: a changed file gets a new stamp and is reloaded."""

    path: Path
    size: int
    mtime_ns: int

    @staticmethod
    def of(path: Path) -> FileStamp:
        """The stamp of a file or folder (a folder's stamp covers every file below it)."""
        path = Path(path).resolve()
        st = path.stat()
        size, mtime = st.st_size, st.st_mtime_ns
        if path.is_dir():
            for child in path.rglob("*"):
                if child.is_file():
                    cst = child.stat()
                    size += cst.st_size
                    mtime = max(mtime, cst.st_mtime_ns)
        return FileStamp(path, size, mtime)


@dataclass(frozen=True)
class CacheStats:
    """What the cache holds and how it has been used."""

    entries: int
    bytes_used: int
    budget_bytes: int
    hits: int
    misses: int
    evictions: int


class ModelCache(Generic[T]):
    """LRU by bytes: inserting beyond `budget_bytes` evicts the least recently used entries; an
    item larger than the whole budget is returned but not kept."""

    def __init__(self, budget_bytes: int, size_of: Callable[[T], int]) -> None:
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
        self._budget = budget_bytes
        self._size_of = size_of
        self._items: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._lock = threading.RLock()
        self._hits = self._misses = self._evictions = 0

    def get_or_load(self, key: Hashable, load: Callable[[], T]) -> T:
        """The cached value for `key`, or `load()`'s result, cached if it fits the budget."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self._hits += 1
                return found[0]
            self._misses += 1
            value = load()
            size = int(self._size_of(value))
            if size <= self._budget:
                self._evict_until(self._budget - size)
                self._items[key] = (value, size)
            return value

    def _evict_until(self, limit: int) -> None:
        while self._items and self.bytes_used > limit:
            self._items.popitem(last=False)
            self._evictions += 1

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def discard(self, key: Hashable) -> None:
        """Forget one entry (e.g. after the file changed on disk)."""
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._items.clear()

    def set_budget(self, budget_bytes: int) -> None:
        """Change the budget, evicting least recently used entries to meet it."""
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
        with self._lock:
            self._budget = budget_bytes
            self._evict_until(budget_bytes)

    @property
    def bytes_used(self) -> int:
        """Sum of the sizes of the cached entries."""
        return sum(size for _, size in self._items.values())

    def stats(self) -> CacheStats:
        """A snapshot of the cache's counters."""
        with self._lock:
            return CacheStats(len(self._items), self.bytes_used, self._budget, self._hits, self._misses,
                              self._evictions)
