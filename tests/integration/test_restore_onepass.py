"""A database restore reads the archive once: the staging databases are fed by the
same pass that verifies every SHA-256 (and gpg's verdict), and the swap happens only
when all of it matched. Against the real PostgreSQL server (tests/lbservers.py).
"""

import os
import re
import shutil

from conftest import EXIT_INTEGRITY
from test_postgres import fingerprint, pg, pg_env, populate, wreck  # noqa: F401 (fixture)


def gpg_counter(tmp_path):
    """A gpg on PATH that records each decrypting run, then runs the real one."""
    real = shutil.which("gpg")
    assert real, "gpg is not installed"
    bindir = tmp_path / "gpgbin"
    bindir.mkdir()
    log = tmp_path / "gpg-decrypts.log"
    (bindir / "gpg").write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do case "$a" in --decrypt|-d) echo run >> "{log}";; esac; done\n'
        f'exec "{real}" "$@"\n')
    os.chmod(bindir / "gpg", 0o755)
    return f"{bindir}:{os.environ['PATH']}", log


def decrypts(log):
    return len(log.read_text().splitlines()) if log.exists() else 0


def staging_databases(pg, before):
    now = set(pg.psql("postgres", "SELECT datname FROM pg_database").splitlines())
    return sorted(now - before)


def test_database_restore_decrypts_the_archive_once(lb, pg, tmp_path):
    db = pg.new_db()
    populate(pg, db, rows=5000)
    want = fingerprint(pg, db)
    path, log = gpg_counter(tmp_path)
    env = pg_env(lb, pg, [pg.uri(db)], BACKUP_DIRS=f"{lb.src}:data", PATH=path)
    files = lb.snap()
    ts = lb.backup(env)
    wreck(pg, db)
    (lb.src / "added-after-backup.txt").write_text("gone after the restore\n")
    before = decrypts(log)
    lb.restore(ts, env)
    assert decrypts(log) - before == 1, "the restore read the archive more than once"
    assert fingerprint(pg, db) == want
    assert lb.snap() == files


def test_sum_mismatch_found_after_the_database_was_staged_changes_nothing(lb, pg):
    """The dump streams into its staging database before SHA256SUMS is read: a
    recorded checksum that does not match then drops the staged copy, and neither the
    database nor the files are swapped."""
    db = pg.new_db()
    pg.psql(db, "CREATE TABLE t AS SELECT generate_series(1, 20000) AS n")
    plain = {"BACKUP_ENCRYPTION": "none", "BACKUP_ENCRYPTION_KEY_FILE": None,
             "BACKUP_COMPRESSION": "none"}
    env = pg_env(lb, pg, [pg.uri(db)], BACKUP_DIRS=f"{lb.src}:data", **plain)
    ts = lb.backup(env)
    archive = lb.archive(ts, ".tar")
    data = bytearray(archive.read_bytes())
    # The recorded SHA-256 of the database member, in SHA256SUMS near the end.
    m = None
    for m in re.finditer(rb"([0-9a-f]{64})  (postgres/[^\n]+)\n", data):
        pass
    assert m, "no SHA256SUMS line for the database member"
    i = m.start(1)
    data[i] = ord("0") if data[i] != ord("0") else ord("1")
    archive.write_bytes(bytes(data))

    pg.psql(db, "DELETE FROM t WHERE n > 100")
    (lb.src / "added-after-backup.txt").write_text("keep me\n")
    files = lb.snap()
    before = set(pg.psql("postgres", "SELECT datname FROM pg_database").splitlines())
    res = lb.restore(ts, env, check=EXIT_INTEGRITY)
    assert "damaged" in res.stderr, res.stderr
    assert pg.psql(db, "SELECT count(*) || ':' || sum(n) FROM t") == f"100:{sum(range(1, 101))}"
    assert staging_databases(pg, before) == []
    assert lb.snap() == files
    assert not list((lb.tmp / "state").glob("*.restore.json")), "the restore journal was left behind"
