"""Findings as values: the KRM `Result` shape, shared by every step of the pipeline."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class ResourceRef:
    api_version: str
    kind: str
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class FileRef:
    path: str
    index: int = 0

    def __str__(self) -> str:
        return self.path if self.index == 0 else f"{self.path}[{self.index}]"


@dataclass(frozen=True)
class Result:
    """One finding. Field names mirror the KRM functions spec's Result."""

    severity: Severity
    message: str
    path: str = ""
    resource: ResourceRef | None = None
    file: FileRef | None = None
    rule: str | None = None

    def at(self, resource: ResourceRef | None, file: FileRef | None) -> Result:
        """The same finding, attributed to a resource and the file it came from."""
        return replace(self, resource=resource or self.resource, file=file or self.file)


def error(message: str, path: str = "", rule: str | None = None) -> Result:
    return Result("error", message, path, rule=rule)


def warning(message: str, path: str = "", rule: str | None = None) -> Result:
    return Result("warning", message, path, rule=rule)


def info(message: str, path: str = "", rule: str | None = None) -> Result:
    return Result("info", message, path, rule=rule)


def counted(n: int, noun: str, plural: str = "") -> str:
    """`1 secret`, `2 secrets`: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def has_errors(results: Iterable[Result]) -> bool:
    return any(r.severity == "error" for r in results)


def sort(results: Iterable[Result]) -> list[Result]:
    """Order by file, severity, resource, field path and message (as the kpt SDK does)."""
    return sorted(
        results,
        key=lambda r: (
            r.file.path if r.file else "",
            r.file.index if r.file else 0,
            _SEVERITY_ORDER[r.severity],
            str(r.resource or ""),
            r.path,
            r.message,
        ),
    )


def to_krm(result: Result) -> dict[str, Any]:
    """Serialize into the `results:` entry format of a ResourceList."""
    out: dict[str, Any] = {"message": result.message, "severity": result.severity}
    if result.resource:
        ref: dict[str, str] = {
            "apiVersion": result.resource.api_version,
            "kind": result.resource.kind,
            "name": result.resource.name,
        }
        if result.resource.namespace:
            ref["namespace"] = result.resource.namespace
        out["resourceRef"] = ref
        # The spec requires resourceRef whenever field is set.
        if result.path:
            out["field"] = {"path": result.path}
    if result.file:
        out["file"] = {"path": result.file.path, "index": result.file.index}
    if result.rule:
        out["tags"] = {"rule": result.rule}
    return out


def format_line(result: Result) -> str:
    """One human-readable line: `file: Kind/name: field.path: [severity] message (rule)`,
    control characters escaped (names in it may come from Vault or from a hostile file)."""
    parts = [str(p) for p in (result.file, result.resource) if p]
    if result.path:
        parts.append(result.path)
    where = ": ".join(parts)
    rule = f" ({result.rule})" if result.rule else ""
    text = f"[{result.severity}] {result.message}{rule}"
    return printable(f"{where}: {text}" if where else text)


def printable(text: str, keep: str = "") -> str:
    """`text` fit for a terminal: every character that is not printable (ANSI escapes, carriage
    returns, bidirectional overrides) written as a Python escape, except those in `keep`."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def field_path(parts: Iterable[str | int]) -> str:
    """`["spec", "secrets", 2, "name"]` -> `spec.secrets[2].name`."""
    out = ""
    for part in parts:
        out = f"{out}[{part}]" if isinstance(part, int) else join(out, part)
    return out


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
