"""PostgreSQL sources against a real server (Debian's postgresql, started by ./test.sh).

The server's superuser password contains '@', ':' and '/', so every URI here
carries a percent-encoded password. Each test works in databases of its own.
Assertions compare fingerprints taken by the server itself (row counts and a
hash over each table's ordered rows, sequence values, object definitions,
large objects) before the backup and after the restore.
"""

import os
import re
import shutil
import subprocess
import urllib.parse
import uuid
from pathlib import Path

import pytest

from conftest import (EXIT_CONFIG, EXIT_SOURCE, EXIT_STORE, assert_no_archive,
                      gpg_decrypt_pipe_tar, need_tool, parse_ts_stdout)
from waiting import HANG


class Pg:
    def __init__(self):
        self.host = os.environ["LB_PG_HOST"]
        self.port = os.environ["LB_PG_PORT"]
        self.user = os.environ.get("LB_PG_USER", "postgres")
        self.password = os.environ["LB_PG_PASSWORD"]
        self.created = []
        self.roles = []

    def env(self):
        env = dict(os.environ)
        env["PGPASSWORD"] = self.password
        return env

    def uri(self, db=None, password=None):
        pw = urllib.parse.quote(self.password if password is None else password, safe="")
        base = f"postgresql://{self.user}:{pw}@{self.host}:{self.port}"
        return f"{base}/{urllib.parse.quote(db, safe='')}" if db is not None else base

    def psql(self, db, sql, check=True):
        p = subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p",
             self.port, "-U", self.user, "-d", db],
            input=sql, capture_output=True, text=True, env=self.env(), timeout=600)
        if check:
            assert p.returncode == 0, f"psql failed: {p.stderr}"
        return p.stdout.strip()

    def new_db(self, prefix="lb"):
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return name

    def drop_db(self, name):
        self.psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def cleanup(self):
        for d in self.created:
            self.psql("postgres", f'DROP DATABASE IF EXISTS "{d}" WITH (FORCE)', check=False)
        for r in self.roles:
            self.psql("postgres", f'DROP ROLE IF EXISTS "{r}"', check=False)


@pytest.fixture
def pg(pg_server):
    need_tool("psql")
    need_tool("pg_dump")
    need_tool("pg_restore")
    p = Pg()
    try:
        yield p
    finally:
        p.cleanup()


def populate(pg, db, rows=20000):
    """Several schemas, large objects, non-ASCII text, sequences, views, functions, pgcrypto."""
    pg.psql(db, f"""
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SCHEMA shop;
CREATE SCHEMA "Zürich Ops";
CREATE TABLE shop.items (id bigserial PRIMARY KEY, name text NOT NULL, price numeric(12,2),
    tags text[], meta jsonb, created timestamptz DEFAULT '2020-01-01 00:00:00+00', blob bytea);
INSERT INTO shop.items (name, price, tags, meta, blob)
  SELECT 'Ärger über Größe № ' || g || ' 日本語 🚀', g * 1.25, ARRAY['x' || g % 7, 'ü'],
         jsonb_build_object('g', g, 'nested', jsonb_build_object('k', repeat('v', g % 50))),
         gen_random_bytes(32)
  FROM generate_series(1, {rows}) g;
CREATE TABLE "Zürich Ops"."Lager Bestand" (sku text PRIMARY KEY, qty int CHECK (qty >= 0),
    item_id bigint REFERENCES shop.items(id));
INSERT INTO "Zürich Ops"."Lager Bestand" SELECT 'SKU-' || g, g % 100, g FROM generate_series(1, 500) g;
CREATE SEQUENCE shop.invoice_no START 1000 INCREMENT 7;
SELECT nextval('shop.invoice_no') FROM generate_series(1, 13);
CREATE VIEW shop.expensive AS SELECT id, name FROM shop.items WHERE price > 100;
CREATE FUNCTION shop.fingerprint(t text) RETURNS text LANGUAGE sql IMMUTABLE
  AS $$ SELECT encode(digest(t, 'sha256'), 'hex') $$;
CREATE INDEX items_tags ON shop.items USING gin (tags);
COMMENT ON TABLE shop.items IS 'Artikel – mit Kommentar';
SELECT lo_from_bytea(0, convert_to(repeat('large object ü ', 5000), 'UTF8'));
SELECT lo_from_bytea(0, '\\x00ff00ff'::bytea);
""")


def pgbench_init(pg, db, scale, timeout=600):
    need_tool("pgbench")
    p = subprocess.run(["pgbench", "-i", "-q", "-s", str(scale), "-h", pg.host, "-p", pg.port,
                        "-U", pg.user, db], capture_output=True, text=True, env=pg.env(),
                       timeout=timeout)
    assert p.returncode == 0, p.stderr


def fake_old_pg_dump(tmp_path):
    """A pg_dump that claims version 9.6 and otherwise runs the real one."""
    real = shutil.which("pg_dump")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "pg_dump").write_text(
        "#!/bin/sh\n"
        "if [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 9.6.24'; exit 0; fi\n"
        f"exec {real} \"$@\"\n")
    os.chmod(fake / "pg_dump", 0o755)
    return f"{fake}:{os.environ['PATH']}"


FINGERPRINT_SQL = r"""
SELECT 'table ' || format('%I.%I', schemaname, tablename) FROM pg_tables
  WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1;
"""


def fingerprint(pg, db):
    """The database as the server sees it, as one comparable dict."""
    fp = {}
    tables = pg.psql(db, FINGERPRINT_SQL).splitlines()
    for t in tables:
        name = t[len("table "):]
        # Count plus an order-independent sum of per-row hashes: exact enough, and
        # constant memory on the server even for the 1 GB table.
        fp[t] = pg.psql(db, f"SELECT count(*) || ':' || coalesce(sum(('x' || substr("
                            f"md5(x::text), 1, 15))::bit(60)::bigint::numeric), 0) "
                            f"FROM {name} x")
    fp["sequences"] = pg.psql(db, "SELECT string_agg(s, ',' ORDER BY s) FROM (SELECT "
                                  "format('%I.%I=%s/%s', schemaname, sequencename, last_value, "
                                  "increment_by) AS s FROM pg_sequences) q")
    fp["views"] = pg.psql(db, "SELECT string_agg(viewname || ':' || definition, '|' ORDER BY "
                              "viewname) FROM pg_views WHERE schemaname NOT IN "
                              "('pg_catalog', 'information_schema')")
    fp["functions"] = pg.psql(db, "SELECT string_agg(pg_get_functiondef(p.oid), '|' ORDER BY "
                                  "p.proname) FROM pg_proc p JOIN pg_namespace n ON "
                                  "n.oid = p.pronamespace WHERE n.nspname = 'shop'")
    fp["extensions"] = pg.psql(db, "SELECT string_agg(extname, ',' ORDER BY extname) "
                                   "FROM pg_extension")
    fp["indexes"] = pg.psql(db, "SELECT string_agg(indexdef, '|' ORDER BY indexname) FROM "
                                "pg_indexes WHERE schemaname NOT IN ('pg_catalog')")
    fp["large_objects"] = pg.psql(db, "SELECT count(*) || ':' || coalesce(md5(string_agg("
                                      "md5(lo_get(oid)), ',' ORDER BY md5(lo_get(oid)))), '') "
                                      "FROM pg_largeobject_metadata")
    fp["comments"] = pg.psql(db, "SELECT string_agg(description, '|' ORDER BY description) "
                                 "FROM pg_description d JOIN pg_class c ON c.oid = d.objoid "
                                 "WHERE c.relname = 'items'")
    return fp


def wreck(pg, db):
    pg.psql(db, """
DELETE FROM "Zürich Ops"."Lager Bestand" WHERE qty > 10;
DELETE FROM shop.items WHERE id % 3 = 0 AND id > 500;
UPDATE shop.items SET name = 'wrecked' WHERE id < 100;
DROP VIEW shop.expensive;
SELECT setval('shop.invoice_no', 1);
SELECT lo_unlink(oid) FROM pg_largeobject_metadata;
CREATE TABLE shop.extra (x int);
""")


def pg_env(lb, pg, uris, **extra):
    env = {"BACKUP_POSTGRES": "\n".join(uris), "BACKUP_DIRS": None, "BACKUP_FILES": None}
    env.update(extra)
    return env


def test_roundtrip_rich_database(lb, pg):
    db = pg.new_db()
    populate(pg, db)
    before = fingerprint(pg, db)
    env = pg_env(lb, pg, [pg.uri(db)])
    ts = lb.backup(env)

    wreck(pg, db)
    assert fingerprint(pg, db) != before
    res = lb.restore(ts, env)
    # Exactly the backed-up database: also the table created after the backup is gone.
    assert fingerprint(pg, db) == before
    assert pg.password not in res.stderr + res.stdout
    log = (lb.tmp / "backup.log").read_text()
    assert pg.password not in log and urllib.parse.quote(pg.password, safe="") not in log


def test_archive_restores_with_plain_tools(lb, pg):
    """gpg -d | tar xz, then pg_restore: no lifeboat needed to get the data back."""
    db = pg.new_db()
    populate(pg, db, rows=3000)
    before = fingerprint(pg, db)
    env = pg_env(lb, pg, [pg.uri(db)])
    ts = lb.backup(env)

    out = gpg_decrypt_pipe_tar(lb.archive(ts), lb.keyfile, lb.tmp / "manual")
    dumps = sorted((out / "postgres" / db).glob(f"{db}.pgdump*"))
    assert [d.name for d in dumps] == [f"{db}.pgdump"]
    fresh = pg.new_db("manual")
    p = subprocess.run(["pg_restore", "--no-password", "-d", fresh, "-h", pg.host, "-p",
                        pg.port, "-U", pg.user, str(dumps[0])],
                       capture_output=True, text=True, env=pg.env(), timeout=600)
    assert p.returncode == 0, p.stderr
    assert fingerprint(pg, fresh) == before


def test_large_dump_streams_in_parts(lb, pg):
    """A dump over 16 MiB is cut into tar members; both lifeboat and cat | pg_restore read it."""
    db = pg.new_db()
    pgbench_init(pg, db, 3, timeout=600)
    pg.psql(db, "UPDATE pgbench_accounts SET abalance = aid % 977, filler = md5(aid::text)")
    before = fingerprint(pg, db)
    env = pg_env(lb, pg, [pg.uri(db)])
    ts = lb.backup(env)

    out = gpg_decrypt_pipe_tar(lb.archive(ts), lb.keyfile, lb.tmp / "manual")
    parts = sorted((out / "postgres" / db).glob(f"{db}.pgdump*"))
    assert len(parts) >= 2 and all(re.search(r"\.pgdump\.\d{6}$", x.name) for x in parts), parts
    assert all(x.stat().st_size == 16 << 20 for x in parts[:-1])
    fresh = pg.new_db("manual")
    cat = subprocess.Popen(["cat", *map(str, parts)], stdout=subprocess.PIPE)
    p = subprocess.run(["pg_restore", "--no-password", "-d", fresh, "-h", pg.host, "-p",
                        pg.port, "-U", pg.user], stdin=cat.stdout, capture_output=True,
                       text=True, env=pg.env(), timeout=600)
    cat.wait()
    assert p.returncode == 0, p.stderr
    assert fingerprint(pg, fresh) == before

    pg.psql(db, "TRUNCATE pgbench_history; DELETE FROM pgbench_accounts WHERE aid > 1000")
    lb.restore(ts, env)
    assert fingerprint(pg, db) == before


@pytest.mark.parametrize("fault,code,needle", [
    # pg_dump SIGKILLed once the first 16 MiB part is handed to the archive, the reader
    # thread reading on: the tool's verdict fails the run.
    ("sink.tool@1:fail", EXIT_SOURCE, "was killed by signal 9"),
    # The archive refuses the first part while pg_dump still writes into the pipe: the
    # reader thread is stopped, pg_dump killed and reaped, the run ends.
    ("sink.part@1:fail", EXIT_STORE, "cannot write"),
])
def test_dump_tool_dying_mid_stream_fails_the_run(lb, pg, fault, code, needle):
    """The pump's two ends failing mid-stream: one line naming the source, no archive."""
    db = pg.new_db()
    pgbench_init(pg, db, 3, timeout=600)
    pg.psql(db, "UPDATE pgbench_accounts SET filler = md5(aid::text)")
    env = pg_env(lb, pg, [pg.uri(db)], BACKUP_DIRS=f"{lb.src}:data", LIFEBOAT_FAULT=fault)
    res = lb.run(["backup"], env, check=code, timeout=HANG)
    err = [l for l in res.stderr_lines() if "error:" in l and needle in l]
    assert len(err) == 1, res
    assert f"{db}" in err[0] and not err[0].endswith(": "), err
    assert pg.password not in res.stderr
    assert_no_archive(lb)
    # Nothing is left holding the database: the next run succeeds and restores it.
    env.pop("LIFEBOAT_FAULT")
    before = fingerprint(pg, db)
    ts = lb.backup(env)
    pg.psql(db, "DELETE FROM pgbench_accounts WHERE aid > 1000")
    lb.restore(ts, env)
    assert fingerprint(pg, db) == before


def test_two_uris_in_one_run(lb, pg):
    a, b = pg.new_db("one"), pg.new_db("two")
    pg.psql(a, "CREATE TABLE t (v text); INSERT INTO t VALUES ('alpha')")
    pg.psql(b, "CREATE TABLE t (v text); INSERT INTO t VALUES ('beta'), ('gamma')")
    # One per line, as the spec's .env shows.
    env = pg_env(lb, pg, [pg.uri(a), pg.uri(b)])
    ts = lb.backup(env)
    pg.psql(a, "DELETE FROM t")
    pg.psql(b, "DROP TABLE t")
    lb.restore(ts, env)
    assert pg.psql(a, "SELECT string_agg(v, ',') FROM t") == "alpha"
    assert pg.psql(b, "SELECT string_agg(v, ',' ORDER BY v) FROM t") == "beta,gamma"


def test_uri_without_database_backs_up_all_and_roles(lb, pg):
    a = pg.new_db("all")
    role = f"lbrole_{uuid.uuid4().hex[:8]}"
    pg.roles.append(role)
    pg.psql("postgres", f"CREATE ROLE {role} LOGIN PASSWORD 'x'")
    pg.psql(a, f"CREATE TABLE owned (v int); INSERT INTO owned SELECT generate_series(1, 100); "
               f"ALTER TABLE owned OWNER TO {role}")
    before = fingerprint(pg, a)
    env = pg_env(lb, pg, [pg.uri()])
    ts = lb.backup(env)

    res = lb.run(["restore", ts, "--dry-run"], env)
    assert "restore" in res.stdout and "***" in res.stdout and pg.password not in res.stdout

    pg.drop_db(a)
    pg.psql("postgres", f"DROP ROLE {role}")
    lb.restore(ts, env)
    assert fingerprint(pg, a) == before
    assert pg.psql(a, "SELECT tableowner FROM pg_tables WHERE tablename = 'owned'") == role


def test_restore_creates_missing_database(lb, pg):
    db = pg.new_db()
    pg.psql(db, "CREATE TABLE t AS SELECT generate_series(1, 1000) AS n")
    env = pg_env(lb, pg, [pg.uri(db)])
    ts = lb.backup(env)
    pg.drop_db(db)
    lb.restore(ts, env)
    assert pg.psql(db, "SELECT sum(n) FROM t") == str(sum(range(1, 1001)))


def test_failed_restore_changes_nothing(lb, pg):
    """pg_restore runs in one transaction: a failure leaves the database as it was,
    and files in the same backup are not swapped in either."""
    db = pg.new_db()
    role = f"lbgone_{uuid.uuid4().hex[:8]}"
    pg.roles.append(role)
    pg.psql("postgres", f"CREATE ROLE {role}")
    pg.psql(db, f"CREATE TABLE t AS SELECT generate_series(1, 10) AS n; "
                f"ALTER TABLE t OWNER TO {role}")
    env = pg_env(lb, pg, [pg.uri(db)], BACKUP_DIRS=f"{lb.src}:data")
    ts = lb.backup(env)
    # The dump's owner no longer exists: pg_restore fails at ALTER ... OWNER TO.
    pg.psql(db, f"DELETE FROM t WHERE n > 5; ALTER TABLE t OWNER TO {pg.user}")
    pg.psql("postgres", f"DROP ROLE {role}")
    (lb.src / "added-after-backup.txt").write_text("keep me\n")
    before_files = lb.snap()
    res = lb.restore(ts, env, check=EXIT_SOURCE)
    assert "pg_restore" in res.stderr and role in res.stderr
    assert pg.password not in res.stderr
    assert pg.psql(db, "SELECT count(*) FROM t") == "5"
    assert lb.snap() == before_files


@pytest.mark.parametrize("case", ["unreachable", "wrong_password", "no_such_database",
                                  "malformed"])
def test_bad_source_fails_the_run(lb, pg, case):
    db = pg.new_db()
    if case == "unreachable":
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        uri = f"postgresql://{pg.user}:x%40y@127.0.0.1:{port}/{db}"
        code, needle = EXIT_SOURCE, "cannot connect"
    elif case == "wrong_password":
        uri = pg.uri(db, password="not-the-password")
        code, needle = EXIT_SOURCE, "password authentication failed"
    elif case == "no_such_database":
        uri = pg.uri("no_such_db_" + uuid.uuid4().hex[:6])
        code, needle = EXIT_SOURCE, "does not exist"
    else:
        uri = f"postgresql://{pg.user}:sec%zzret@{pg.host}:{pg.port}/{db}"
        code, needle = EXIT_CONFIG, "percent-encoding"
    # The directory source is fine: the bad database alone must fail the whole run.
    env = pg_env(lb, pg, [uri], BACKUP_DIRS=f"{lb.src}:data")
    res = lb.run(["backup"], env, check=code, timeout=HANG)
    err = [l for l in res.stderr_lines() if "error:" in l and needle in l]
    assert len(err) == 1, res
    assert "BACKUP_POSTGRES" in err[0] or "PostgreSQL" in err[0]
    assert "not-the-password" not in res.stderr and pg.password not in res.stderr
    assert "sec%zzret" not in res.stderr
    assert_no_archive(lb)


def test_server_newer_than_pg_dump_is_refused(lb, pg, tmp_path):
    """The version check: a pg_dump older than the server is refused with both versions."""
    path = fake_old_pg_dump(tmp_path)
    db = pg.new_db()
    server = pg.psql(db, "SHOW server_version_num")
    env = pg_env(lb, pg, [pg.uri(db)], PATH=path)
    res = lb.run(["backup"], env, check=EXIT_SOURCE)
    msg = [l for l in res.stderr_lines() if "error:" in l and "pg_dump" in l]
    assert len(msg) == 1, res
    assert f"version {int(server) // 10000}" in msg[0] and "version 9" in msg[0], msg
    assert_no_archive(lb)


@pytest.mark.slow
def test_one_gigabyte_roundtrip(lb, pg):
    """~1 GB of pgbench rows (plus the rich objects) through backup and restore."""
    db = pg.new_db("big")
    populate(pg, db, rows=2000)
    pgbench_init(pg, db, 70, timeout=1800)
    size = int(pg.psql(db, "SELECT pg_database_size(current_database())"))
    assert size > 1_000_000_000, size
    before = fingerprint(pg, db)
    env = pg_env(lb, pg, [pg.uri(db)])
    ts = lb.backup(env, timeout=3600)
    pg.psql(db, "DELETE FROM pgbench_accounts WHERE aid % 2 = 0; DROP VIEW shop.expensive")
    lb.run(["restore", ts, "--yes"], env, timeout=3600)
    assert fingerprint(pg, db) == before


def test_password_never_in_a_command_line(lb, pg):
    """While pg_dump runs, no process shows the password (plain or encoded) in argv."""
    db = pg.new_db()
    pgbench_init(pg, db, 4, timeout=600)
    needles = [pg.password.encode(), urllib.parse.quote(pg.password, safe="").encode()]
    proc = lb.popen(["backup"], pg_env(lb, pg, [pg.uri(db)]), stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    hits, saw_dump, scans = [], False, 0
    while proc.poll() is None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"pg_dump\0--format=custom" in cmd:  # also behind Debian's pg_wrapper
                saw_dump = True
                assert b"--dbname=postgresql://" in cmd
            hits += [(pid, cmd[:200]) for n in needles if n in cmd]
        scans += 1
    assert proc.returncode == 0
    assert saw_dump, f"pg_dump never observed in {scans} scans: the check proved nothing"
    assert not hits, hits


def test_dump_mode_local_names_both_versions_and_bad_mode(lb, pg, tmp_path):
    path = fake_old_pg_dump(tmp_path)
    db = pg.new_db()
    env = pg_env(lb, pg, [pg.uri(db)], PATH=path,
                 BACKUP_POSTGRES_DUMP="local")
    res = lb.run(["backup"], env, check=EXIT_SOURCE)
    msg = [l for l in res.stderr_lines() if "error:" in l and "version" in l]
    assert len(msg) == 1 and "version 9" in msg[0] and "BACKUP_POSTGRES_DUMP=exec" in msg[0]
    assert_no_archive(lb)
    res = lb.run(["backup"], pg_env(lb, pg, [pg.uri(db)], BACKUP_POSTGRES_DUMP="docker"),
                 check=EXIT_CONFIG)
    assert "BACKUP_POSTGRES_DUMP" in res.stderr
