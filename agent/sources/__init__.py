"""I/O only: connect, run the query pass, return a raw immutable snapshot (no decisions here)."""
