"""The notify pipeline: the worker, its stages, dedup, retry, pacing and digests."""
