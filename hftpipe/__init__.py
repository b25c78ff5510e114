"""hftpipe: a low-latency multiprocess crypto trading pipeline."""

__version__ = "0.1.0"
