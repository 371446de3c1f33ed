"""The baselines the router is measured against, on the router's webhook path.

bare:  aiohttp parses each body as JSON and answers.
floor: the same, and each body is appended to SQLite (WAL, synchronous=FULL) by one writer
       thread that commits whatever is queued as one transaction; answered after the commit.

    python bench/floor.py {bare,floor} --port 8080 --db /tmp/floor.db
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import sqlite3
import threading
from concurrent.futures import Future

from aiohttp import web

Pending = tuple[bytes, Future[None]]


def writer(path: str, inbox: queue.SimpleQueue[Pending]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS bodies (seq INTEGER PRIMARY KEY, body BLOB)")
    while True:
        batch = [inbox.get()]
        while True:
            try:
                batch.append(inbox.get_nowait())
            except queue.Empty:
                break
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO bodies (body) VALUES (?)", [(b,) for b, _ in batch])
        conn.execute("COMMIT")
        for _, done in batch:
            done.set_result(None)


def app(mode: str, db: str) -> web.Application:
    inbox: queue.SimpleQueue[Pending] = queue.SimpleQueue()
    if mode == "floor":
        threading.Thread(target=writer, args=(db, inbox), daemon=True).start()

    async def accept(request: web.Request) -> web.Response:
        body = await request.read()
        json.loads(body)
        if mode == "floor":
            done: Future[None] = Future()
            inbox.put((body, done))
            await asyncio.wrap_future(done)
        return web.json_response({"status": "ok"})

    application = web.Application()
    application.router.add_post("/webhook/alertmanager", accept)
    return application


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["bare", "floor"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", default="floor.db")
    args = parser.parse_args()
    web.run_app(app(args.mode, args.db), host="127.0.0.1", port=args.port, print=None)
