"""A small stand-in for a real application: every few seconds it stores an "upload"
file, a row in its SQLite database (WAL mode) and a row in PostgreSQL."""
import os
import signal
import sqlite3
import sys
import time

import psycopg2

UPLOADS = os.environ.get("UPLOADS", "/app/uploads")
SQLITE = os.environ.get("SQLITE_PATH", "/app/db/app.db")
# PostgreSQL through libpq's PGHOST, PGDATABASE, PGUSER, PGPASSWORD (unset PGHOST: none).
USE_PG = bool(os.environ.get("PGHOST"))
INTERVAL = float(os.environ.get("INTERVAL", "2"))

running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
os.makedirs(UPLOADS, exist_ok=True)
os.makedirs(os.path.dirname(SQLITE), exist_ok=True)
db = sqlite3.connect(SQLITE, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at REAL, note TEXT)")
pg = None
n = db.execute("SELECT count(*) FROM events").fetchone()[0]
print(f"app: started with {n} events", flush=True)
while running:
    n += 1
    with open(os.path.join(UPLOADS, f"upload-{n:06d}.txt"), "w") as f:
        f.write(f"upload {n} at {time.time()}\n")
    db.execute("INSERT INTO events (at, note) VALUES (?, ?)", (time.time(), f"event {n}"))
    if USE_PG:
        try:
            if pg is None:
                pg = psycopg2.connect("")
                pg.autocommit = True
                pg.cursor().execute("CREATE TABLE IF NOT EXISTS events "
                                    "(id serial PRIMARY KEY, at timestamptz DEFAULT now(), note text)")
            pg.cursor().execute("INSERT INTO events (note) VALUES (%s)", (f"event {n}",))
        except psycopg2.Error as e:
            print(f"app: PostgreSQL not ready: {str(e).strip()}", file=sys.stderr, flush=True)
            pg = None
    time.sleep(INTERVAL)
db.close()
print("app: stopped", flush=True)
