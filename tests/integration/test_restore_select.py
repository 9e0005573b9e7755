"""Issue 12, sections 2 and 3: what a restore writes, and where.

* An archive never chooses where a restore writes: a source of the backup that
  is not configured now is skipped (the path its manifest records stays as it
  is, byte for byte); only --to extracts it, into a directory the user names.
* restore --only NAME restores those sources and leaves the others alone.
* restore --to DIR extracts the backed-up tree (and database dumps as the files
  pg_restore reads) under DIR/<kind>/<name>/ after full verification.
* ls TIMESTAMP [PATH] [--json] lists what a backup holds.
"""

import json
import os
import re
import stat

import pytest

from conftest import (EXIT_CONFIG, EXIT_NOT_FOUND, EXIT_USAGE, assert_same_tree,
                      assert_untouched, entry_info, snapshot, wreck_tree)
from test_mongodb import fingerprint as mongo_fingerprint
from test_mongodb import mongo, populate, run_mongorestore  # noqa: F401  (mongo: a fixture)
from test_postgres import fingerprint, pg  # noqa: F401  (pg is a fixture)


def cron_dir(lb):
    """A directory standing in for /etc/cron.d: backed up once, not configured later."""
    d = lb.tmp / "cron.d"
    d.mkdir()
    (d / "backup").write_bytes(b"0 2 * * * root /usr/local/bin/backup\n")
    (d / "rotate").write_bytes(b"15 3 * * * root /usr/sbin/logrotate\n")
    os.chmod(d / "rotate", 0o600)
    return d


def with_cron(lb, cron):
    return {"BACKUP_DIRS": f"{lb.src}:data,{cron}:cron"}


def error_lines(res):
    return [l for l in res.stderr_lines() if " error: " in l]


# --------------------------------------------------------------------------
# 2. an archive never chooses where a restore writes
# --------------------------------------------------------------------------

def test_unconfigured_source_is_skipped_and_its_recorded_path_untouched(lb, tmp_path):
    cron = cron_dir(lb)
    orig = snapshot(lb.src)
    ts = lb.backup(with_cron(lb, cron))

    # Someone changes the recorded path since: the restore must leave it alone.
    (cron / "backup").write_bytes(b"* * * * * root /tmp/owned\n")
    (cron / "added-later").write_bytes(b"new\n")
    (cron / "rotate").unlink()
    cron_before = snapshot(cron)
    single_before = entry_info(lb.single)

    # Now only 'data' is configured, at another path; 'cron' and 'single' are not.
    new = tmp_path / "elsewhere" / "data"
    new.mkdir(parents=True)
    env = {"BACKUP_DIRS": f"{new}:data", "BACKUP_FILES": None}

    dry = lb.run(["restore", ts, "--dry-run"], env)
    # Only a "skip" line may name them: nothing would be created, updated or removed there.
    named = [l for l in dry.stdout.splitlines() if str(cron) in l or str(lb.single) in l]
    assert len(named) == 2 and all(l.startswith("skip ") for l in named), dry

    res = lb.restore(ts, env)
    assert_same_tree(orig, snapshot(new), "the configured source, restored at its new path")
    assert_same_tree(cron_before, snapshot(cron), "the unconfigured source's recorded path")
    assert entry_info(lb.single) == single_before, "unconfigured file source was restored"
    assert any("warning" in l and "'cron'" in l and "not configured" in l
               for l in res.stderr_lines()), res

    # verify still checks the whole archive, skipped sources included.
    lb.run(["verify", ts], env)


def test_unconfigured_source_that_was_removed_is_not_recreated(lb):
    cron = cron_dir(lb)
    ts = lb.backup(with_cron(lb, cron))
    for p in cron.iterdir():
        p.unlink()
    cron.rmdir()
    wreck_tree(lb.src)
    lb.restore(ts)  # the default configuration: data and single, no cron
    assert not os.path.lexists(cron), "a restore wrote where only the archive said"


def test_restore_with_no_source_configured_fails_and_changes_nothing(lb):
    ts = lb.backup()
    wreck_tree(lb.src)
    before = lb.snap_all()
    other = lb.tmp / "other"
    other.mkdir()
    res = lb.restore(ts, {"BACKUP_DIRS": f"{other}:other", "BACKUP_FILES": None},
                     check=EXIT_CONFIG)
    assert any("nothing to restore" in l for l in error_lines(res)), res
    assert_untouched(before, lb.snap_all(), "data after a restore with nothing configured")
    assert os.listdir(other) == []


def test_unconfigured_database_is_skipped(lb, pg):
    db = pg.new_db("unconf")
    pg.psql(db, "CREATE TABLE t (v int); INSERT INTO t SELECT generate_series(1, 100)")
    orig = snapshot(lb.src)
    ts = lb.backup({"BACKUP_POSTGRES": pg.uri(db)})
    pg.psql(db, "DELETE FROM t WHERE v > 10")
    wreck_tree(lb.src)

    lb.restore(ts)  # BACKUP_POSTGRES not set now
    assert_same_tree(orig, snapshot(lb.src), "the configured dir source")
    assert pg.psql(db, "SELECT count(*) FROM t") == "10", "unconfigured database restored"


# --------------------------------------------------------------------------
# 3. --only
# --------------------------------------------------------------------------

def test_only_one_dir_or_one_file(lb):
    cron = cron_dir(lb)
    env = with_cron(lb, cron)
    orig, orig_cron = lb.snap(), snapshot(cron)
    ts = lb.backup(env)

    def wreck_all():
        wreck_tree(lb.src)
        lb.single.write_bytes(b"changed since\n")
        (cron / "backup").write_bytes(b"changed\n")

    wreck_all()
    wrecked, wrecked_cron = lb.snap(), snapshot(cron)
    lb.restore(ts, env, extra=["--only", "data"])
    assert_same_tree(orig["src"], snapshot(lb.src), "--only data: data")
    assert entry_info(lb.single) == wrecked["single"], "--only data restored single"
    assert_same_tree(wrecked_cron, snapshot(cron), "--only data: cron")

    lb.restore(ts, env, extra=["--only=single"])
    assert entry_info(lb.single) == orig["single"]
    assert_same_tree(wrecked_cron, snapshot(cron), "--only single: cron")

    wreck_all()
    wrecked = lb.snap()
    lb.restore(ts, env, extra=["--only", "cron,single"])
    assert_same_tree(orig_cron, snapshot(cron), "--only cron,single: cron")
    assert entry_info(lb.single) == orig["single"]
    assert_same_tree(wrecked["src"], snapshot(lb.src), "--only cron,single: data")


def test_only_database(lb, pg):
    a, b = pg.new_db("onlya"), pg.new_db("onlyb")
    for d in (a, b):
        pg.psql(d, "CREATE TABLE t (v int); INSERT INTO t SELECT generate_series(1, 500)")
    env = {"BACKUP_POSTGRES": f"{pg.uri(a)}\n{pg.uri(b)}"}
    before_a = fingerprint(pg, a)
    orig = lb.snap()
    ts = lb.backup(env)

    for d in (a, b):
        pg.psql(d, "DELETE FROM t WHERE v % 2 = 0; CREATE TABLE extra (x int)")
    wreck_tree(lb.src)
    wrecked, wrecked_b = lb.snap(), fingerprint(pg, b)
    lb.restore(ts, env, extra=["--only", a])
    assert fingerprint(pg, a) == before_a
    assert fingerprint(pg, b) == wrecked_b, "--only A changed database B"
    assert lb.snap() == wrecked, "--only a database changed the files"
    assert lb.snap() != orig


def test_bad_only_name_changes_nothing(lb):
    ts = lb.backup()
    wreck_tree(lb.src)
    before = lb.snap_all()

    res = lb.restore(ts, check=EXIT_NOT_FOUND, extra=["--only", "data,nosuch"])
    errs = error_lines(res)
    assert len(errs) == 1 and "'nosuch'" in errs[0], res
    assert_untouched(before, lb.snap_all(), "data after a bad --only")

    res = lb.restore(ts, check=EXIT_USAGE, extra=["--only", "../etc"])
    assert "--only" in res.stderr
    assert_untouched(before, lb.snap_all(), "data after a malformed --only")

    # In the backup but not configured now: in place needs a configuration (or --to).
    res = lb.restore(ts, {"BACKUP_FILES": None}, check=EXIT_CONFIG, extra=["--only", "single"])
    assert "'single'" in error_lines(res)[0] and "--to" in error_lines(res)[0], res
    assert_untouched(before, lb.snap_all(), "data after --only of an unconfigured source")


# --------------------------------------------------------------------------
# 3. --to
# --------------------------------------------------------------------------

def test_to_extracts_exactly_the_backed_up_tree(lb, tmp_path):
    cron = cron_dir(lb)
    orig, orig_cron = lb.snap(), snapshot(cron)
    orig_root = entry_info(lb.src)
    ts = lb.backup(with_cron(lb, cron))
    wreck_tree(lb.src)
    before = lb.snap_all()

    # The default configuration has no 'cron': --to extracts it all the same.
    out = tmp_path / "new" / "extract"
    lb.run(["restore", ts, "--to", str(out)])
    assert sorted(os.listdir(out)) == ["dirs", "files"]
    assert sorted(os.listdir(out / "dirs")) == ["cron", "data"]
    assert_same_tree(orig["src"], snapshot(out / "dirs" / "data"), "DIR/dirs/data")
    assert entry_info(out / "dirs" / "data") == orig_root, "the directory's own mode and time"
    assert_same_tree(orig_cron, snapshot(out / "dirs" / "cron"), "DIR/dirs/cron")
    assert os.listdir(out / "files" / "single") == [lb.single.name]
    assert entry_info(out / "files" / "single" / lb.single.name) == orig["single"]
    assert_untouched(before, lb.snap_all(), "the sources after --to")

    # --only with --to, into an existing empty directory.
    out2 = tmp_path / "empty"
    out2.mkdir()
    lb.run(["restore", ts, "--only", "single", "--to", str(out2)])
    assert snapshot(out2).keys() == {"files", "files/single", f"files/single/{lb.single.name}"}
    assert entry_info(out2 / "files" / "single" / lb.single.name) == orig["single"]


def test_to_refuses_a_non_empty_directory(lb, tmp_path):
    ts = lb.backup()
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_bytes(b"mine\n")
    before = snapshot(out)
    res = lb.run(["restore", ts, "--to", str(out)], check=EXIT_USAGE)
    assert len(error_lines(res)) == 1 and str(out) in error_lines(res)[0], res
    assert_same_tree(before, snapshot(out), "non-empty --to directory")
    lb.run(["restore", ts, "--to", str(tmp_path / "x"), "--dry-run"], check=EXIT_USAGE)
    assert not os.path.lexists(tmp_path / "x")


def test_to_shows_nothing_of_a_damaged_archive(lb, tmp_path):
    ts = lb.backup()
    arc = lb.archive(ts)
    data = bytearray(arc.read_bytes())
    data[len(data) * 2 // 3] ^= 0x55
    arc.write_bytes(bytes(data))
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (tmp_path / "new", empty):
        res = lb.run(["restore", ts, "--to", str(out)], check=False)
        assert res.returncode in (6, 7), res
        assert not out.exists() or os.listdir(out) == [], \
            f"a failed --to left {sorted(os.listdir(out))}"


def test_to_database_dump_restores_with_pg_restore(lb, pg, tmp_path):
    """A dump over 16 MiB is stored in parts; --to joins them into one file."""
    import subprocess
    db = pg.new_db("to")
    pg.psql(db, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, "
                "md5(g::text) || md5((g + 1)::text) FROM generate_series(1, 300000) g")
    before = fingerprint(pg, db)
    env = {"BACKUP_POSTGRES": pg.uri(db), "BACKUP_DIRS": None, "BACKUP_FILES": None}
    ts = lb.backup(env)
    ls = json.loads(lb.run(["ls", ts, "--json"], env).stdout)
    assert [e["path"] for e in ls] == [f"postgres/{db}/{db}.pgdump"]

    out = tmp_path / "out"
    lb.run(["restore", ts, "--to", str(out)], {"BACKUP_POSTGRES": None})
    assert os.listdir(out / "postgres" / db) == [f"{db}.pgdump"]
    dump = out / "postgres" / db / f"{db}.pgdump"
    assert dump.stat().st_size > 16 << 20, "the test dump should have been stored in parts"
    assert dump.stat().st_size == ls[0]["size"]
    fresh = pg.new_db("fresh")
    p = subprocess.run(["pg_restore", "--no-password", "-d", fresh, "-h", pg.host, "-p",
                        pg.port, "-U", pg.user, str(dump)],
                       capture_output=True, text=True, env=pg.env(), timeout=600)
    assert p.returncode == 0, p.stderr
    assert fingerprint(pg, fresh) == before


def test_to_mongodb_dump_restores_with_mongorestore(lb, mongo, tmp_path, mongorestore_path):
    """A collection over 16 MiB is stored in parts; --to joins them for mongorestore."""
    import bson
    db = mongo.new_db()
    populate(mongo, db, n=50)
    for i in range(18):
        mongo.client[db].big.insert_one({"_id": i, "blob": bson.Binary(os.urandom(1 << 20), 0)})
    before = mongo_fingerprint(mongo, db)
    env = {"BACKUP_MONGODB": mongo.uri(db), "BACKUP_DIRS": None, "BACKUP_FILES": None}
    ts = lb.backup(env, timeout=600)

    out = tmp_path / "out"
    lb.run(["restore", ts, "--only", db, "--to", str(out)], env, timeout=600)
    files = sorted(os.listdir(out / "mongodb" / db / db))
    assert "big.bson" in files and not any(re.search(r"\.\d{6}$", f) for f in files), files
    assert (out / "mongodb" / db / db / "big.bson").stat().st_size > 16 << 20
    fresh = mongo.new_db("lbto")
    run_mongorestore(mongo, tmp_path, mongorestore_path,
                     ["--dir", str(out / "mongodb" / db), "--nsFrom", f"{db}.*", "--nsTo",
                      f"{fresh}.*", "--noIndexRestore"])
    after = mongo_fingerprint(mongo, fresh)
    assert sorted(after) == sorted(before)
    for name in before:
        assert after[name][0] == before[name][0], f"documents of {name} differ"


# --------------------------------------------------------------------------
# 3. ls
# --------------------------------------------------------------------------

def expected_entries(lb):
    """archive path -> os.lstat of what was backed up."""
    out = {"dirs/data": os.lstat(lb.src)}
    for dirpath, dirnames, filenames in os.walk(lb.src):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            out["dirs/data/" + os.path.relpath(full, lb.src)] = os.lstat(full)
    out[f"files/single/{lb.single.name}"] = os.lstat(lb.single)
    return out


def test_ls_lists_every_file_with_size_mode_mtime(lb):
    want = expected_entries(lb)
    ts = lb.backup()
    wreck_tree(lb.src)  # ls reads the archive, not the disk

    got = json.loads(lb.run(["ls", ts, "--json"]).stdout)
    assert isinstance(got, list)
    by_path = {e["path"]: e for e in got}
    assert sorted(by_path) == sorted(want)
    for path, st in want.items():
        e = by_path[path]
        kind = ("dir" if stat.S_ISDIR(st.st_mode) else
                "symlink" if stat.S_ISLNK(st.st_mode) else "file")
        assert e["type"] == kind, e
        assert e["source"] == ("single" if path.startswith("files/") else "data")
        if kind == "symlink":
            src = lb.src / path[len("dirs/data/"):]
            assert e["link"] == os.readlink(src) if src.is_symlink() else True
            continue
        assert int(e["mode"], 8) == stat.S_IMODE(st.st_mode), e
        assert e["mtime_ns"] == st.st_mtime_ns // 10**9 * 10**9, e  # whole seconds
        assert (e["uid"], e["gid"]) == (st.st_uid, st.st_gid)
        if kind == "file":
            assert e["size"] == st.st_size, e

    # PATH: a source, a path in one (with or without the kind), and nothing.
    sub = json.loads(lb.run(["ls", ts, "data/deep", "--json"]).stdout)
    assert sorted(e["path"] for e in sub) == sorted(p for p in want
                                                    if p.startswith("dirs/data/deep"))
    assert json.loads(lb.run(["ls", ts, "dirs/data/deep", "--json"]).stdout) == sub
    only = json.loads(lb.run(["ls", ts, "single", "--json"]).stdout)
    assert [e["path"] for e in only] == [f"files/single/{lb.single.name}"]
    res = lb.run(["ls", ts, "data/no/such"], check=EXIT_NOT_FOUND)
    assert len(error_lines(res)) == 1, res

    text = lb.run(["ls", ts]).stdout
    for path in want:
        assert path in text, f"ls does not show {path!r}"
    assert "ls" in lb.run(["--help"]).stdout
    assert "--json" in lb.run(["ls", "--help"]).stdout


def test_ls_of_a_damaged_archive_shows_nothing(lb):
    ts = lb.backup()
    arc = lb.archive(ts)
    data = bytearray(arc.read_bytes())
    data[len(data) // 2] ^= 0x55
    arc.write_bytes(bytes(data))
    res = lb.run(["ls", ts, "--json"], check=False)
    assert res.returncode in (6, 7), res
    assert res.stdout == ""
