"""The seam between the core and Vault: what a KV v2 store must do, and the values it returns.

`vault.VaultStore` implements it over HTTP; the tests add an in-memory store with the same
KV v2 semantics, and one behavioural suite runs against both. Paths are inside a mount; the
mount is passed with every call, as Vault's API and hvac do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

Latest = Literal["live", "deleted", "destroyed", "none"]
WriteKind = Literal["create", "update", "metadata", "delete"]
KvArea = Literal["data", "metadata"]  # a secret's versions, or everything else about it
DEFAULT_WORKERS = 8  # store calls in flight at once (one kept-alive connection each)
SEQUENTIAL_BELOW = 5  # fewer calls than this run one after another: threads would cost more

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[str, int, int], None]  # (phase, done, total)


def kv_path(mount: str, area: KvArea, path: str) -> str:
    """The KV v2 API path of `path` in `mount`: what the HTTP API, policies and capability
    checks name (`secret/data/app/db`), where the rest of the code says `mount/path`."""
    return f"{mount}/{area}/{path}"


@dataclass(frozen=True)
class Entry:
    """What Vault holds at one path: the latest version's data and the secret's metadata.

    `version` is the current version number, the one a check-and-set write must name (0 for
    metadata without any version). `latest` says whether that version can be read: it may
    have been soft-deleted, destroyed, or expired through `delete_version_after`.
    """

    data: Mapping[str, str] = field(repr=False)
    version: int
    custom_metadata: Mapping[str, str] = field(default_factory=dict)
    latest: Latest = "live"
    deletion_time: str = ""

    @property
    def live(self) -> bool:
        return self.latest == "live"

    @property
    def ever_written(self) -> bool:
        """Whether the path has ever held data (a metadata-only entry has not)."""
        return self.version > 0


@dataclass(frozen=True)
class Version:
    """One earlier version of a secret."""

    state: Latest
    data: Mapping[str, str] = field(default_factory=dict, repr=False)  # only when live


@dataclass(frozen=True)
class WriteCheck:
    """One write a plan will make, for the permission check that precedes every write."""

    kind: WriteKind
    mount: str
    path: str

    @property
    def api_path(self) -> str:
        return kv_path(self.mount, "data" if self.kind in ("create", "update") else "metadata", self.path)

    @classmethod
    def data(cls, mount: str, path: str, cas: int) -> WriteCheck:
        """A data write: a create where check-and-set names version 0, else an update."""
        return cls("create" if cas == 0 else "update", mount, path)

    @property
    def capability(self) -> str:
        return "patch" if self.kind == "metadata" else self.kind

    @property
    def refusal(self) -> str:
        """What a token refused this write lacks (for findings)."""
        return f"the token may not {self.capability} {self.api_path}: its policy needs '{self.capability}' there"


class SecretStore(Protocol):
    """KV v2, as much of it as secret-contract needs. Errors are `errors.*` exceptions."""

    def check_mount(self, mount: str) -> None:
        """Raise unless `mount` is a KV version 2 mount."""

    def read(self, mount: str, path: str) -> Entry | None:
        """The entry at `path`, None if nothing (not even metadata) is there."""

    def read_version(self, mount: str, path: str, version: int) -> Version:
        """One version: its data if it can be read, else whether it was deleted (and may be
        undeleted), destroyed, or is not there."""

    def list(self, mount: str, folder: str) -> list[str] | None:
        """Names directly in `folder` (sub-folders end in '/'); None if the token may not list."""

    def write(self, mount: str, path: str, data: Mapping[str, str], cas: int) -> int:
        """Write a new version with check-and-set; return its number (CasConflict on a race)."""

    def update_metadata(self, mount: str, path: str, changes: Mapping[str, str | None]) -> None:
        """Merge keys into the custom metadata (None removes a key); the path must exist."""

    def delete(self, mount: str, path: str) -> None:
        """Delete the metadata and every version (idempotent)."""

    def denied(self, checks: list[WriteCheck]) -> list[WriteCheck]:
        """The checks the token may not do, found without writing anything."""

    @property
    def request_counts(self) -> dict[str, int]:
        """Requests sent so far, by HTTP method."""


def parallel(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int = DEFAULT_WORKERS,
    progress: Progress | None = None,
    phase: str = "",
) -> list[R]:
    """`fn` over `items` on `workers` threads, results in order. After a failure no further
    item is started; the failure of the earliest item among those that ran propagates."""
    items = list(items)
    if len(items) < SEQUENTIAL_BELOW or workers <= 1:
        out = [fn(item) for item in items]
        if progress and items:
            progress(phase, len(items), len(items))
        return out
    import itertools
    import threading

    # Each thread takes the next index itself (next() on a count is atomic): a thread pool's
    # future per item cost some 15 us of the interpreter's time, shared with the requests.
    results: list[R] = [None] * len(items)  # type: ignore[list-item]
    indexes = itertools.count()
    failures: list[tuple[int, BaseException]] = []
    lock = threading.Lock()
    finished = 0

    def work() -> None:
        nonlocal finished
        while not failures:
            i = next(indexes)
            if i >= len(items):
                return
            try:
                results[i] = fn(items[i])
            except BaseException as exc:  # raised again in the calling thread
                failures.append((i, exc))
                return
            if progress:
                with lock:
                    finished += 1
                    progress(phase, finished, len(items))

    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(workers, len(items)))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        failures.append((-1, KeyboardInterrupt()))  # Ctrl-C: the threads start nothing more
        raise
    if failures:
        raise min(failures, key=lambda failure: failure[0])[1]
    return results
