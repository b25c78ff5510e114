"""Market data: one small adapter per venue, the shared FeedEngine, and the feed process."""

from hftpipe.feeds.base import (
    RESYNC_RESULTS,
    BookUpdate,
    Frame,
    FrameError,
    FrameKind,
    SymbolBook,
    SyncResult,
    Venue,
)
from hftpipe.feeds.engine import EngineStats, FeedEngine, SymbolStats
from hftpipe.feeds.registry import VENUES, make_venue, venue_class

__all__ = ["RESYNC_RESULTS", "BookUpdate", "Frame", "FrameError", "FrameKind", "SymbolBook", "SyncResult",
           "Venue", "FeedEngine", "EngineStats", "SymbolStats", "VENUES", "make_venue", "venue_class"]
