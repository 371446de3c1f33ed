"""The web console: server-rendered pages over the delivery records, the route tree and
the health of each part, with the admin's actions (retry, reload)."""
