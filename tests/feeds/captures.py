"""Turn the real capture files into book-check input (frames and REST lines merged in time order)."""

from pathlib import Path

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "data" / "captures"


def to_book_check(ws_name: str, http_name: str, out: Path) -> Path:
    """Write ``out`` with one frame per line and ``REST url body`` lines at their receive time."""
    events = []
    for line in (CAPTURES / ws_name).read_text().splitlines():
        if " <-> " in line or " <- " in line:
            continue  # connection opened / frames we sent
        ts, sep, text = line.partition(": ")
        if sep:
            events.append((float(ts), text))
    for line in (CAPTURES / http_name).read_text().splitlines():
        url, sep, rest = line.partition(" -> ")
        if not sep:
            continue
        ts, _, body = rest.partition(": ")
        events.append((float(ts), f"REST {url} {body}"))
    events.sort(key=lambda e: e[0])
    out.write_text("\n".join(text for _, text in events) + "\n")
    return out
