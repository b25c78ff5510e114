"""Configuration errors: every problem found in one pass, each naming its full key path."""

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigIssue:
    """One problem (or warning). ``path`` is the full key path, e.g.
    ``hft.market_data.exchanges.binance.symbols[1]``; it is empty for a problem with the file as
    a whole (empty file, YAML syntax error), which is then reported against the file name."""

    path: str
    message: str
    line: int | None = None

    def render(self, source: str | None = None) -> str:
        where = self.path or source or "<config>"
        text = f"{where}: {self.message}"
        if self.line is not None:
            text += f" (line {self.line})"
        return text

    def __str__(self) -> str:
        return self.render()


class ConfigError(ValueError):
    """A config could not be loaded. ``errors`` holds every problem found, in file order."""

    def __init__(self, errors: Iterable[ConfigIssue], source: str | None = None) -> None:
        self.errors: tuple[ConfigIssue, ...] = tuple(errors)
        self.source = source
        n = len(self.errors)
        head = f"{n} configuration error{'s' if n != 1 else ''}"
        if source:
            head += f" in {source}"
        lines = [head + ":"] + [f"  {e.render(source)}" for e in self.errors]
        super().__init__("\n".join(lines))

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(e.path for e in self.errors)
