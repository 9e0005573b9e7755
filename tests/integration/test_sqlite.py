"""SQLite databases listed in BACKUP_FILES: consistent copies while the app writes."""

import json
import os
import sqlite3
import subprocess
import sys

from conftest import gpg_decrypt_pipe_tar
from waiting import HANG, wait_until

WRITER = r"""
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=int(sys.argv[2]))
db.execute("PRAGMA journal_mode=WAL")
n = db.execute("SELECT coalesce(max(id), 0) FROM t").fetchone()[0]
print("ready", flush=True)
while True:
    n += 1
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO t(id, payload) VALUES (?, ?)", (n, "x" * 200 + str(n)))
    db.execute("COMMIT")
"""


def make_db(path, rows=50_000, wal=True):
    db = sqlite3.connect(path, isolation_level=None)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    db.execute("CREATE INDEX t_payload ON t(payload)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO t VALUES (?, ?)",
                   ((i, "x" * 200 + str(i)) for i in range(1, rows + 1)))
    db.execute("COMMIT")
    db.close()


def check_db(path):
    """integrity_check passes and ids are exactly 1..N (a committed state)."""
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n, lo, hi = db.execute("SELECT count(*), min(id), max(id) FROM t").fetchone()
        assert (lo, hi) == (1, n), f"ids not contiguous: count={n} min={lo} max={hi}"
        for (i, payload) in db.execute("SELECT id, payload FROM t WHERE id % 997 = 0"):
            assert payload == "x" * 200 + str(i)
        return n
    finally:
        db.close()


def count(path):
    db = sqlite3.connect(path, timeout=HANG)
    try:
        return db.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        db.close()


def test_sqlite_copy_is_consistent_while_the_app_writes(lb, tmp_path):
    appdir = tmp_path / "app"
    appdir.mkdir()
    dbfile = appdir / "app.db"
    make_db(dbfile)
    env = {"BACKUP_FILES": f"{dbfile}:database"}
    # The busy timeout is a hang guard: a loaded machine may hold a lock for long.
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(dbfile), str(HANG)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        # The writer is committing (was: a 0.5 s sleep that hoped so).
        start = count(dbfile)
        wait_until(lambda: count(dbfile) > start or writer.poll() is not None,
                   "the writer to commit")
        assert writer.poll() is None, "the writer died"
        before = count(dbfile)
        ts = lb.backup(env)
        after = count(dbfile)
    finally:
        writer.kill()
        writer.wait()
    assert after > before, "the writer did not write during the backup"
    assert os.path.exists(str(dbfile) + "-wal"), "the test database is not in WAL mode"

    # Wreck the database, then restore it.
    dbfile.write_bytes(b"garbage, not a database")
    lb.restore(ts, env)
    n = check_db(dbfile)
    assert before <= n <= after, (before, n, after)
    # The old WAL must not be replayed into the restored database.
    for side in ("-wal", "-shm", "-journal"):
        assert not os.path.exists(str(dbfile) + side), side
    leftovers = [x for x in os.listdir(appdir) if x.startswith(".lifeboat-")]
    assert leftovers == []


def test_restore_moves_the_old_wal_aside(lb, tmp_path):
    dbfile = tmp_path / "wal.db"
    make_db(dbfile, rows=1000)
    env = {"BACKUP_FILES": f"{dbfile}:database"}
    ts = lb.backup(env)
    # New rows that live only in the WAL: a connection kept open stops a checkpoint.
    db = sqlite3.connect(dbfile, isolation_level=None)
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("INSERT INTO t VALUES (5000, 'only in the wal')")
    assert os.path.getsize(str(dbfile) + "-wal") > 0
    lb.restore(ts, env)
    db.close()  # the old connection goes away after the restore, as a stopped app would
    for side in ("-wal", "-journal"):
        path = str(dbfile) + side
        assert not os.path.exists(path) or os.path.getsize(path) == 0, side
    assert check_db(dbfile) == 1000


def test_non_sqlite_file_is_copied_byte_for_byte(lb, tmp_path):
    fake = tmp_path / "looks-like.db"
    fake.write_bytes(b"SQLite format 2\x00 but not really" + os.urandom(4096))
    env = {"BACKUP_FILES": f"{fake}:fake"}
    data = fake.read_bytes()
    ts = lb.backup(env)
    fake.write_bytes(b"changed")
    lb.restore(ts, env)
    assert fake.read_bytes() == data


def test_sqlite_in_the_archive_opens_with_standard_tools(lb, tmp_path):
    dbfile = tmp_path / "plain.db"
    make_db(dbfile, rows=2000, wal=False)
    env = {"BACKUP_FILES": f"{dbfile}:database"}
    ts = lb.backup(env)
    dest = gpg_decrypt_pipe_tar(lb.archive(ts), lb.keyfile, tmp_path / "x")
    manifest = json.loads((dest / "manifest.json").read_text())
    assert [s.get("format") for s in manifest["sources"] if s["name"] == "database"] == ["sqlite"]
    assert check_db(dest / "files" / "database" / "plain.db") == 2000
