"""Market data: one small adapter per venue, the shared FeedEngine, and the feed process."""

from hftpipe.feeds.base import BookUpdate, Frame, FrameError, FrameKind, SymbolBook, SyncResult, Venue
from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.registry import VENUES, make_venue, venue_class

__all__ = ["BookUpdate", "Frame", "FrameError", "FrameKind", "SymbolBook", "SyncResult", "Venue",
           "FeedEngine", "VENUES", "make_venue", "venue_class"]
