"""A restore killed at any instant leaves every target wholly old or wholly new.

The restore is SIGKILLed at every step of its swap (the test build's fault
points: `restore.swap` before each rename or exchange, `journal.write` before
each journal update is renamed into place, `restore.finish` before each old or
staged copy is deleted; `pg.swap` before each database rename). The next
command (`backup`, `restore`, `prune` or `run`) must first finish or undo the
swap. Assertions are on tree signatures (snapshot()) and table rows: every
target equals its state before the restore or the restored state, all at the
same version; no staging copy is left; the backup taken afterwards archives
exactly the tree on disk.
"""

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conftest import (EXIT_NOT_FOUND, EXIT_SOURCE, MTIME_BASE_NS, entry_info, need_tool,
                      parse_ts_stdout, snapshot)
from test_postgres import pg  # noqa: F401  (the fixture)

try:
    from test_mongodb import mongo  # noqa: F401  (the fixture; needs pymongo)
except ImportError as exc:
    _no_pymongo = str(exc)

    @pytest.fixture
    def mongo():
        pytest.fail(f"cannot run the MongoDB case: {_no_pymongo}")

POINTS = ("restore.swap", "journal.write", "restore.finish")


def write_tree(root, files, links=()):
    root = Path(root)
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    for rel, target in links:
        os.symlink(target, root / rel)
    i = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in sorted(filenames) + sorted(dirnames):
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                i += 1
                os.utime(full, ns=(MTIME_BASE_NS + i * 10**9, MTIME_BASE_NS + i * 10**9))


class Crash:
    """Two directory sources and a file source, a backup of state NEW, then state OLD on disk."""

    def __init__(self, lb, extra_env=None, sqlite=False):
        self.lb = lb
        self.sqlite = sqlite
        self.data = lb.root / "data"
        self.conf = lb.root / "conf"
        self.file = lb.root / "appetc" / "app.db"
        self.env = {
            "BACKUP_DIRS": f"{self.data}:data,{self.conf}:conf",
            "BACKUP_FILES": f"{self.file}:appdb",
            "BACKUP_ENCRYPTION": "none",
            "BACKUP_ENCRYPTION_KEY_FILE": None,
            "BACKUP_KEEP_LAST": "100",
            **(extra_env or {}),
        }
        self.pristine = lb.tmp / "pristine"
        # NEW: what the backup holds.
        self.make(new=True)
        self.ts = lb.backup(self.env)
        self.new = None  # taken from a restore that ran to its end
        # OLD: what the disk holds when the restore starts.
        self.make(new=False)
        self.old = self.snap()
        for name, p in (("data", self.data), ("conf", self.conf)):
            shutil.copytree(p, self.pristine / name, symlinks=True)
        self.pristine_file = self.pristine / "app.db"
        shutil.copy2(self.file, self.pristine_file)
        self.pristine_wal = None
        if sqlite:
            self.pristine_wal = self.pristine / "app.db-wal"
            shutil.copy2(self.file.parent / "app.db-wal", self.pristine_wal)

    def make(self, new):
        for p in (self.data, self.conf):
            if p.exists():
                shutil.rmtree(p)
            p.mkdir(parents=True)
        v = b"new" if new else b"old"
        write_tree(self.data, {
            "a.txt": b"a " + v + b"\n",
            "b.bin": os.urandom(1000) if new else b"b old\n",
            "sub/c.txt": b"c " + v + b"\n",
            "sub/deeper/d.txt": b"d " + v,
            **({"only-new.txt": b"created in the backup\n", "newdir/x": b"x"} if new else
               {"only-old.txt": b"created after the backup\n", "olddir/y": b"y"}),
        }, links=[("link", "a.txt" if new else "sub/c.txt")])
        write_tree(self.conf, {"app.conf": b"conf " + v + b"\n",
                               **({"n.conf": b"n"} if new else {"o.conf": b"o"})})
        self.file.parent.mkdir(parents=True, exist_ok=True)
        if self.sqlite:
            for p in self.file.parent.iterdir():
                p.unlink()
            with sqlite3.connect(self.file) as db:
                db.execute("CREATE TABLE t (v TEXT)")
                db.executemany("INSERT INTO t VALUES (?)", [(v.decode(),)] * (3 if new else 5))
            db.close()
            if not new:
                # The old database's WAL: it must go with the old file, never stay
                # beside the restored one (SQLite would replay it into it).
                (self.file.parent / (self.file.name + "-wal")).write_bytes(b"old wal")
        else:
            self.file.write_bytes(b"file " + v + b"\n" * (3 if new else 5))
        os.utime(self.file, ns=(MTIME_BASE_NS, MTIME_BASE_NS))

    def reset(self):
        """Back to OLD exactly (copytree keeps mtimes, modes and links)."""
        for name, p in (("data", self.data), ("conf", self.conf)):
            shutil.rmtree(p)
            shutil.copytree(self.pristine / name, p, symlinks=True)
        shutil.copy2(self.pristine_file, self.file)
        for p in self.file.parent.iterdir():
            if p.name != self.file.name:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        if self.pristine_wal:
            shutil.copy2(self.pristine_wal, self.file.parent / "app.db-wal")
        assert self.snap() == self.old

    def snap(self):
        return {"data": snapshot(self.data), "conf": snapshot(self.conf),
                "file": entry_info(self.file) if os.path.lexists(self.file) else None,
                "beside-file": sorted(os.listdir(self.file.parent))}

    def restore(self, fault=None, trace=None, check=True):
        env = dict(self.env)
        if fault:
            env["LIFEBOAT_FAULT"] = fault
        if trace:
            env["LIFEBOAT_FAULT_TRACE"] = str(trace)
        return self.lb.run(["restore", self.ts, "--yes"], env, check=check)

    @property
    def journal(self):
        return self.lb.tmp / "state" / f"{self.lb.NAME}.restore.json"

    def assert_one_version(self, what):
        now = self.snap()
        parts = ("data", "conf", "file", "beside-file")
        if all(now[k] == self.old[k] for k in parts):
            return "old"
        if all(now[k] == self.new[k] for k in parts):
            return "new"
        mixed = {k: ("old" if now[k] == self.old[k] else "new" if now[k] == self.new[k]
                     else "neither") for k in parts}
        raise AssertionError(f"{what}: targets are not at one version: {mixed}\n"
                             f"data now: {sorted(now['data'])}\nbeside file: {now['beside-file']}")

    def assert_archive_matches_disk(self, ts):
        """The archive of `ts` holds exactly the tree on disk (names, types, bytes, links)."""
        arch = self.lb.archive(ts, ".tar.gz")
        got = {}
        with tarfile.open(arch, "r:gz") as t:
            for m in t.getmembers():
                if m.isfile():
                    data = t.extractfile(m).read()
                    got[m.name] = ("file", hashlib.sha256(data).hexdigest())
                elif m.issym():
                    got[m.name] = ("link", m.linkname)
                elif m.isdir():
                    got[m.name.rstrip("/")] = ("dir", None)
        want = {}
        for prefix, root in (("dirs/data", self.data), ("dirs/conf", self.conf)):
            want[prefix] = ("dir", None)
            for rel, info in snapshot(root).items():
                want[f"{prefix}/{rel}"] = (info[0], info[4] if info[0] != "dir" else None)
        want["files/appdb/app.db"] = ("file", entry_info(self.file)[4])
        got = {k: v for k, v in got.items() if k.startswith(("dirs/", "files/"))}
        if self.sqlite:
            # An online-backup copy, not the file's bytes: compare its rows instead.
            assert "files/appdb/app.db" in got
            got.pop("files/appdb/app.db")
            want.pop("files/appdb/app.db")
        assert got == want, "the backup after recovery does not archive the tree on disk"


def count_passes(trace):
    counts = {}
    for line in Path(trace).read_text().splitlines():
        counts[line] = counts.get(line, 0) + 1
    return counts


def next_command(c, how):
    """The command after the kill; it must recover first. Returns its result."""
    lb = c.lb
    if how == "backup":
        res = lb.run(["backup"], c.env)
        c.assert_archive_matches_disk(parse_ts_stdout(res))
        return res
    if how == "restore":
        # A timestamp that does not exist: the recovery runs, then the restore fails.
        return lb.run(["restore", "2001-01-01-000000", "--yes"], c.env, check=EXIT_NOT_FOUND)
    if how == "prune":
        return lb.run(["prune"], c.env)
    assert how == "run"
    proc = lb.popen(["run"], c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while c.journal.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        # The journal goes last; the leftovers are removed right after it.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if not any(p.name.startswith(".lifeboat-") for d in (c.data, c.conf, c.file.parent)
                       for p in d.iterdir()):
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode(errors="replace")
    return None


def crash_cases(c, tmp, points=POINTS, fault_prefix=""):
    trace = tmp / "trace"
    c.restore(fault=fault_prefix.rstrip(",") or None, trace=trace)
    c.new = c.snap()
    assert c.new != c.old
    counts = count_passes(trace)
    for p in points:
        assert counts.get(p), f"fault point {p} never passed: {counts}"
    return [(p, k) for p in points for k in range(1, counts[p] + 1)]


@pytest.mark.parametrize("exchange,sqlite", [(True, False), (False, False), (True, True)],
                         ids=["exchange", "no-exchange", "sqlite-wal"])
def test_restore_killed_at_every_step(lb, exchange, sqlite):
    c = Crash(lb, sqlite=sqlite)
    prefix = "" if exchange else "restore.noexchange@1:fail,"
    cases = crash_cases(c, lb.tmp, fault_prefix=prefix)
    commands = ("backup", "restore", "prune", "backup")
    seen = set()
    for i, (point, k) in enumerate(cases):
        c.reset()
        res = c.restore(fault=f"{prefix}{point}@{k}:kill", check=False)
        assert res.returncode == -signal.SIGKILL, f"{point}@{k} did not kill: {res!r}"
        if exchange:
            # RENAME_EXCHANGE: the file target exists at every instant.
            assert c.file.exists(), f"killed at {point}@{k}, the file target is absent"
        how = "run" if i == len(cases) // 2 else commands[i % len(commands)]
        next_command(c, how)
        seen.add(c.assert_one_version(f"killed at {point}@{k}, then {how}"))
        assert not c.journal.exists(), f"{point}@{k}: the journal is still there after {how}"
    # Early kills roll back, late ones forward: both sides were exercised.
    assert seen == {"old", "new"}, seen


def test_kill_before_journal_leaves_no_staging_copy(lb):
    """Killed while staging (before any journal exists): the next backup removes the copies."""
    c = Crash(lb)
    c.new = c.old  # the swap never started
    res = c.restore(fault="journal.write@1:kill", check=False)
    assert res.returncode == -signal.SIGKILL
    left = [p.name for d in (c.data, c.conf, c.file.parent) for p in d.iterdir()
            if p.name.startswith(".lifeboat-")]
    assert left, "expected staging copies beside the targets after the kill"
    next_command(c, "backup")
    assert c.assert_one_version("killed before the journal was written") == "old"


@pytest.mark.parametrize("how", ["strace-eio", "fault"])
def test_early_writeback_error_fails_the_restore(lb, how):
    """A write error that the writeback begun while staging finds (sync_file_range failing
    with EIO under strace -e inject, or the restore.writeback fault point) fails the restore
    (exit 4, naming the file) before the swap: every target is as it was, no journal, no
    staged copy left."""
    c = Crash(lb)
    c.new = c.old  # the swap must never start
    if how == "fault":
        res = c.restore(fault="restore.writeback@1:fail", check=EXIT_SOURCE)
    else:
        need_tool("strace")
        env = lb.env(c.env)
        # LeakSanitizer (an ASan build) cannot run under ptrace; the rest of ASan can.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                     "detect_leaks=0"]))
        res = subprocess.run(["strace", "-f", "-qq", "-o", str(lb.tmp / "strace.txt"),
                              "-e", "trace=sync_file_range",
                              "-e", "inject=sync_file_range:error=EIO", str(lb.bin),
                              "restore", c.ts, "--yes"], env=env, capture_output=True,
                             text=True, timeout=300, cwd=str(lb.tmp))
        assert res.returncode == EXIT_SOURCE, res.stderr
    assert "cannot write '" in res.stderr and "Input/output error" in res.stderr, res.stderr
    assert c.assert_one_version("after the failed writeback") == "old"
    assert not c.journal.exists(), "a journal was left: the swap was planned"
    left = [p.name for d in (c.data, c.conf, c.file.parent) for p in d.iterdir()
            if p.name.startswith(".lifeboat-")]
    assert not left, f"staged copies left: {left}"


def test_unrecoverable_swap_stops_the_backup(lb):
    """Recovery that cannot complete: backup exits 4 naming the restore, archives nothing."""
    c = Crash(lb)
    res = c.restore(fault="restore.swap@3:kill", check=False)
    assert res.returncode == -signal.SIGKILL
    before = sorted(os.listdir(lb.backup_dir))
    # The staged copy of the data directory disappears: it cannot be finished.
    stage = next(p for p in c.data.iterdir() if p.name.startswith(".lifeboat-restore."))
    shutil.rmtree(stage)
    res = lb.run(["backup"], c.env, check=EXIT_SOURCE)
    assert c.ts in res.stderr and "interrupted" in res.stderr, res.stderr
    assert sorted(os.listdir(lb.backup_dir)) == before, "a backup was archived anyway"
    assert c.journal.exists(), "the journal must stay for the next attempt"


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------

def pg_rows(pg, db):
    return pg.psql(db, "SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM t")


def pg_leftovers(pg):
    return pg.psql("postgres", "SELECT string_agg(datname, ',') FROM pg_database "
                               "WHERE datname LIKE 'lifeboat\\_%'")


def test_postgres_restore_killed_at_every_rename(lb, pg):
    db = pg.new_db("lbcrash")
    pg.psql(db, "CREATE TABLE t (id int PRIMARY KEY, v text); "
                "INSERT INTO t VALUES (1, 'new'), (2, 'new')")
    c = Crash(lb, {"BACKUP_POSTGRES": pg.uri(db)})
    pg.psql(db, "DELETE FROM t; INSERT INTO t VALUES (1, 'old'), (3, 'old')")
    old_rows, new_rows = pg_rows(pg, db), "1:new,2:new"
    assert old_rows == "1:old,3:old"

    cases = crash_cases(c, lb.tmp, points=("restore.fed", "pg.swap", "journal.write", "restore.swap"))
    assert pg_rows(pg, db) == new_rows
    # A few file steps; every database rename and journal write.
    cases = [(p, k) for p, k in cases if p != "restore.swap" or k in (1, 5)]
    commands = ("backup", "restore", "prune")
    for i, (point, k) in enumerate(cases):
        c.reset()
        pg.psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        pg.psql("postgres", f'CREATE DATABASE "{db}"')
        pg.psql(db, "CREATE TABLE t (id int PRIMARY KEY, v text); "
                    "INSERT INTO t VALUES (1, 'old'), (3, 'old')")
        res = c.restore(fault=f"{point}@{k}:kill", check=False)
        assert res.returncode == -signal.SIGKILL, f"{point}@{k} did not kill: {res!r}"
        how = commands[i % len(commands)]
        res = lb.run(["backup"] if how == "backup" else
                     ["prune"] if how == "prune" else
                     ["restore", "2001-01-01-000000", "--yes"], c.env,
                     check=EXIT_NOT_FOUND if how == "restore" else True)
        files = c.assert_one_version(f"killed at {point}@{k}, then {how}")
        rows = pg_rows(pg, db)  # the database name is present
        assert rows == (new_rows if files == "new" else old_rows), \
            f"{point}@{k}: files are {files} but the database holds {rows}"
        assert pg_leftovers(pg) in ("", None), f"{point}@{k}: left {pg_leftovers(pg)}"
        assert not c.journal.exists()


# --------------------------------------------------------------------------
# MongoDB
# --------------------------------------------------------------------------

def mongo_docs(m, db):
    return {c: sorted((d["_id"], d["v"]) for d in m.client[db][c].find())
            for c in sorted(m.client[db].list_collection_names())}


def test_mongodb_restore_killed_at_every_rename(lb, mongo):
    db = mongo.new_db("lbcrash")

    def fill(v):
        mongo.client.drop_database(db)
        mongo.client[db]["a"].insert_many([{"_id": 1, "v": v}, {"_id": 2, "v": v}])
        mongo.client[db]["b"].insert_many([{"_id": 1, "v": v}])

    fill("new")
    c = Crash(lb, {"BACKUP_MONGODB": mongo.uri(db)})
    new_docs = mongo_docs(mongo, db)
    fill("old")
    old_docs = mongo_docs(mongo, db)

    cases = crash_cases(c, lb.tmp, points=("restore.fed", "mongo.swap", "journal.write", "restore.swap"))
    assert mongo_docs(mongo, db) == new_docs
    cases = [(p, k) for p, k in cases if p != "restore.swap" or k in (1, 5)]
    commands = ("backup", "restore", "prune")
    for i, (point, k) in enumerate(cases):
        c.reset()
        fill("old")
        res = c.restore(fault=f"{point}@{k}:kill", check=False)
        assert res.returncode == -signal.SIGKILL, f"{point}@{k} did not kill: {res!r}"
        how = commands[i % len(commands)]
        lb.run(["backup"] if how == "backup" else ["prune"] if how == "prune" else
               ["restore", "2001-01-01-000000", "--yes"], c.env,
               check=EXIT_NOT_FOUND if how == "restore" else True)
        files = c.assert_one_version(f"killed at {point}@{k}, then {how}")
        docs = mongo_docs(mongo, db)  # no lifeboat-restore-* / lifeboat-old-* left either
        assert docs == (new_docs if files == "new" else old_docs), \
            f"{point}@{k}: files are {files} but the database holds {docs}"
        assert not c.journal.exists()
