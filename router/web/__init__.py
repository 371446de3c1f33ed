"""The HTTP service: the aiohttp app, handlers, metrics and logging."""
