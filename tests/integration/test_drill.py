"""Restore drills (issue 17): `lifeboat verify --latest [--drill]` and BACKUP_VERIFY_SCHEDULE.

Against the real servers of the session (PostgreSQL, FerretDB for MongoDB). A drill must
restore each dump into a scratch database `lifeboat_drill_<hash of BACKUP_NAME>_*` on the
same server, count what it holds, drop it, and never touch the live database: the live
databases are changed after the backup, so counts that match the backup (not the live
data) prove the scratch copy was restored, and the live fingerprint taken before the drill
must be the same afterwards. Waits are polls with hang guards (waiting.py), never sleeps.
"""

import hashlib
import http.server
import json
import re
import subprocess
import threading
import urllib.request

import pytest

from conftest import EXIT_INTEGRITY, EXIT_OK, EXIT_SOURCE, EXIT_USAGE
from waiting import HANG, wait_until
from test_daemon import free_port, parse_prom, stop
from test_postgres import Pg, fingerprint as pg_fingerprint, pg_env  # noqa: F401
from test_mongodb import Mongo, fingerprint as mongo_fingerprint, mongo_env


def drill_prefix(lb):
    return "lifeboat_drill_" + hashlib.sha256(lb.NAME.encode()).hexdigest()[:8] + "_"


def state(lb):
    p = lb.tmp / "state" / f"{lb.NAME}.state.json"
    return json.loads(p.read_text()) if p.exists() else {}


def pg_drill_dbs(pg, prefix="lifeboat_drill_"):
    out = pg.psql("postgres", "SELECT datname FROM pg_database WHERE datname LIKE "
                              "'lifeboat\\_drill\\_%' ORDER BY 1")
    return [d for d in out.splitlines() if d.startswith(prefix)]


@pytest.fixture
def pg(pg_server):
    p = Pg()
    try:
        yield p
    finally:
        p.cleanup()


@pytest.fixture
def mongo(ferretdb_server):
    m = Mongo()
    try:
        yield m
    finally:
        m.cleanup()


class Receiver:
    """Webhooks and generic+http notifications: path and JSON body of each POST."""

    def __init__(self):
        self.requests = []
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                rec.requests.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, path):
        return [b for p, b in self.requests if p == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def make_pg_db(pg):
    db = pg.new_db()
    pg.psql(db, """
CREATE SCHEMA shop;
CREATE TABLE shop.items (id bigserial PRIMARY KEY, name text NOT NULL);
INSERT INTO shop.items (name) SELECT 'item ' || g FROM generate_series(1, 1234) g;
CREATE TABLE public.notes (n int);
INSERT INTO public.notes SELECT g FROM generate_series(1, 17) g;
""")
    return db


def drill_lines(res):
    return [l for l in res.stderr.splitlines() if "drill: PostgreSQL" in l or
            "drill: MongoDB" in l]


def test_pg_drill_restores_a_scratch_copy_and_leaves_the_live_db_alone(lb, pg):
    db = make_pg_db(pg)
    env = pg_env(lb, pg, [pg.uri(db)])
    ts = lb.backup(env)
    # The live database moves on after the backup: the drill must count the backup's rows.
    pg.psql(db, "DELETE FROM shop.items WHERE id > 1000; INSERT INTO public.notes VALUES (99);")
    live = pg_fingerprint(pg, db)
    res = lb.run(["verify", "--latest", "--drill"], env)
    assert "restore drill passed" in res.stdout
    lines = drill_lines(res)
    assert len(lines) == 1, res.stderr
    assert f"database '{db}': 2 tables, 1251 rows" in lines[0], lines
    assert "public.notes 17" in lines[0] and "shop.items 1234" in lines[0], lines
    # The live database is exactly as it was before the drill; no scratch database is left.
    assert pg_fingerprint(pg, db) == live
    assert pg.psql(db, "SELECT count(*) FROM shop.items") == "1000"
    assert pg_drill_dbs(pg) == []
    assert pg.password not in res.stderr + res.stdout
    st = state(lb)["verify"]
    assert st["last"]["status"] == "success"
    assert st["last"]["file"] == f"local: {lb.archive(ts).name}"
    assert st["runs_success"] == 1 and st["runs_failure"] == 0
    assert st["stores"]["local"]["last_success"] > 0
    out = lb.run(["status"], env).stdout
    assert re.search(r"last verify\s+success \(manual\)", out), out


def test_corrupted_archive_fails_the_drill_exit_7_and_is_reported(lb, pg, receiver):
    db = make_pg_db(pg)
    env = pg_env(lb, pg, [pg.uri(db)],
                 BACKUP_FAILURE_WEBHOOK=f"http://127.0.0.1:{receiver.port}/fail",
                 BACKUP_NOTIFY_URLS=f"generic+http://127.0.0.1:{receiver.port}/notify")
    ts = lb.backup(env)
    live = pg_fingerprint(pg, db)
    a = lb.archive(ts)
    data = bytearray(a.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(b ^ 0x5A for b in data[mid:mid + 64])
    a.write_bytes(bytes(data))
    res = lb.run(["verify", "--latest", "--drill"], env, check=EXIT_INTEGRITY)
    assert "restore drill of backup" in res.stderr and "in the local store failed" in res.stderr
    assert drill_lines(res) == []
    assert pg_fingerprint(pg, db) == live
    assert pg_drill_dbs(pg) == []
    st = state(lb)["verify"]
    assert st["last"]["status"] == "failure" and st["last"]["error"]
    assert st["stores"]["local"]["failures"] == 1
    assert st["stores"]["local"]["last_success"] == 0
    out = lb.run(["status"], env).stdout
    assert re.search(r"last verify\s+failure \(manual\)", out), out
    assert re.search(r"local\s+last passed never, 1 failed", out), out
    # The failure webhook and the notification (level failure, the default) both went.
    for path in ("/fail", "/notify"):
        bodies = receiver.bodies(path)
        assert len(bodies) == 1, receiver.requests
        assert bodies[0]["status"] == "failure" and bodies[0]["job"] == "restore drill"
        assert "damaged" in bodies[0]["error"] or "corrupt" in bodies[0]["error"] \
            or "gpg" in bodies[0]["error"], bodies[0]["error"]


def test_dump_that_does_not_restore_fails_the_drill(lb, pg):
    """The dump names a role that is gone since: pg_restore fails, the drill exits 4."""
    db = make_pg_db(pg)
    role = f"lbdrill_{db[-10:]}"
    pg.psql("postgres", f'CREATE ROLE "{role}"')
    pg.roles.append(role)
    pg.psql(db, f'CREATE TABLE public.owned (x int); ALTER TABLE public.owned OWNER TO "{role}"')
    env = pg_env(lb, pg, [pg.uri(db)])
    lb.backup(env)
    # A backup that verified fine ...
    lb.run(["verify", "--latest"], env)
    pg.psql(db, f'DROP OWNED BY "{role}"')
    pg.psql("postgres", f'DROP ROLE "{role}"')
    live = pg_fingerprint(pg, db)
    # ... whose dump no longer restores on this server.
    res = lb.run(["verify", "--latest", "--drill"], env, check=EXIT_SOURCE)
    assert "pg_restore" in res.stderr and role in res.stderr, res.stderr
    assert pg_fingerprint(pg, db) == live
    assert pg_drill_dbs(pg) == []
    st = state(lb)["verify"]
    assert st["last"]["status"] == "failure"
    assert st["runs_success"] == 1 and st["runs_failure"] == 1


def test_scratch_db_of_a_killed_drill_is_dropped_by_the_next(lb, pg):
    db = make_pg_db(pg)
    env = pg_env(lb, pg, [pg.uri(db)])
    lb.backup(env)
    # Another sidecar's scratch database (another BACKUP_NAME's hash) is not ours.
    foreign = "lifeboat_drill_00000000_deadbeef"
    pg.psql("postgres", f'CREATE DATABASE "{foreign}"')
    pg.created.append(foreign)
    killed = lb.run(["verify", "--latest", "--drill"],
                    dict(env, LIFEBOAT_FAULT="drill.check@1:kill"), check=-9)
    assert killed.returncode == -9
    left = pg_drill_dbs(pg, drill_prefix(lb))
    assert len(left) == 1, left
    pg.created.extend(left)
    # The scratch copy was complete: the killed drill had restored the rows.
    assert pg.psql(left[0], "SELECT count(*) FROM shop.items") == "1234"
    res = lb.run(["verify", "--latest", "--drill"], env)
    assert f"dropped '{left[0]}'" in res.stderr, res.stderr
    assert pg_drill_dbs(pg, drill_prefix(lb)) == []
    assert pg_drill_dbs(pg, "lifeboat_drill_00000000_") == [foreign]
    assert pg.psql(db, "SELECT count(*) FROM shop.items") == "1234"


def test_mongodb_drill_counts_the_backup_and_leaves_the_live_db_alone(lb, mongo):
    db = mongo.new_db()
    d = mongo.client[db]
    d.items.insert_many([{"_id": i, "v": "x" * (i % 30)} for i in range(321)])
    d.items.create_index([("v", 1)], name="v_1")
    d.events.insert_many([{"seq": i} for i in range(45)])
    env = mongo_env([mongo.uri(db)])
    lb.backup(env)
    d.items.delete_many({"_id": {"$gte": 300}})
    d.extra.insert_one({"after": True})
    live = mongo_fingerprint(mongo, db)
    res = lb.run(["verify", "--latest", "--drill"], env)
    lines = drill_lines(res)
    assert len(lines) == 1, res.stderr
    assert f"database '{db}': 2 collections, 366 documents (events 45, items 321)" in lines[0]
    assert mongo_fingerprint(mongo, db) == live
    assert [n for n in mongo.client.list_database_names()
            if n.startswith("lifeboat_drill_")] == []
    assert mongo.password not in res.stderr + res.stdout


def test_mongodb_scratch_db_of_a_killed_drill_is_dropped(lb, mongo):
    db = mongo.new_db()
    mongo.client[db].items.insert_many([{"_id": i} for i in range(10)])
    env = mongo_env([mongo.uri(db)])
    lb.backup(env)
    lb.run(["verify", "--latest", "--drill"], dict(env, LIFEBOAT_FAULT="drill.check@1:kill"),
           check=-9)
    left = [n for n in mongo.client.list_database_names() if n.startswith(drill_prefix(lb))]
    assert len(left) == 1
    mongo.created.extend(left)
    assert mongo.client[left[0]].items.count_documents({}) == 10
    res = lb.run(["verify", "--latest", "--drill"], env)
    assert f"dropped '{left[0]}'" in res.stderr
    assert [n for n in mongo.client.list_database_names()
            if n.startswith(drill_prefix(lb))] == []


def test_verify_latest_usage(lb):
    assert lb.run(["verify", "--latest", "2020-01-01-000000"], check=EXIT_USAGE)
    assert lb.run(["verify", "--drill"], check=EXIT_USAGE)
    # Nothing to verify: exit 8, recorded as a failed verification.
    lb.run(["verify", "--latest"], check=8)
    assert state(lb)["verify"]["last"]["status"] == "failure"


def test_daemon_runs_a_drill_on_its_schedule(lb):
    ts = lb.backup()
    port = free_port()
    # Every 2 seconds (the seconds field); no backup schedule: drills only.
    proc = lb.popen(["run"], {"BACKUP_VERIFY_SCHEDULE": "*/2 * * * * *",
                              "BACKUP_METRICS_ADDR": f"127.0.0.1:{port}"},
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: state(lb).get("verify", {}).get("runs_success", 0) >= 2,
                   "two scheduled drills")
        st = state(lb)["verify"]
        assert st["last"]["trigger"] == "scheduled"
        assert st["last"]["file"] == f"local: {lb.archive(ts).name}"
        assert st["next_run"] > 0

        def scrape():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                            timeout=HANG) as r:
                    return r.read().decode()
            except OSError:
                return None
        m = parse_prom(wait_until(scrape, "the metrics endpoint"))
        name = lb.NAME
        assert m[f'lifeboat_verify_last_success_timestamp_seconds{{name="{name}",'
                 f'store="local"}}'] >= st["stores"]["local"]["last_success"] - 60
        assert m[f'lifeboat_verify_runs_total{{name="{name}",outcome="success"}}'] >= 2
        assert m[f'lifeboat_verify_failures_total{{name="{name}",store="local"}}'] == 0
        assert m[f'lifeboat_verify_last_run_success{{name="{name}"}}'] == 1
        assert m[f'lifeboat_next_verify_timestamp_seconds{{name="{name}"}}'] > 0
        # No backup ran: the schedule is the drills' only.
        assert state(lb).get("runs_success", 0) == 1
    finally:
        rc = stop(proc)
    assert rc in (EXIT_OK, 130)


@pytest.fixture
def my(mariadb_server):
    from test_mysql import My
    m = My(mariadb_server)
    try:
        yield m
    finally:
        m.cleanup()


def my_drill_dbs(my, prefix="lifeboat_drill_"):
    return sorted(d for d in my.databases() if d.startswith(prefix))


def test_mysql_drill_counts_the_backup_and_leaves_the_live_db_alone(lb, my):
    from test_mysql import my_env
    db = my.new_db()
    my.sql(db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));"
               "INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_250;"
               "CREATE TABLE u (x INT); INSERT INTO u VALUES (1), (2), (3);")
    env = my_env([my.uri(db)])
    lb.backup(env)
    my.sql(db, "DELETE FROM t WHERE id > 200; INSERT INTO u VALUES (4);")
    live = (my.sql(db, "SELECT COUNT(*), SUM(id) FROM t"), my.sql(db, "SELECT COUNT(*) FROM u"))
    # A killed drill's scratch database is there for the next one to drop.
    lb.run(["verify", "--latest", "--drill"], dict(env, LIFEBOAT_FAULT="drill.check@1:kill"),
           check=-9)
    left = my_drill_dbs(my, drill_prefix(lb))
    assert len(left) == 1
    my.created.extend(left)
    res = lb.run(["verify", "--latest", "--drill"], env)
    assert f"dropped '{left[0]}'" in res.stderr
    lines = drill_lines(res) + [l for l in res.stderr.splitlines() if "drill: MySQL" in l]
    assert len(lines) == 1, res.stderr
    assert f"database '{db}': 2 tables, 253 rows (t 250, u 3)" in lines[0], lines
    assert (my.sql(db, "SELECT COUNT(*), SUM(id) FROM t"),
            my.sql(db, "SELECT COUNT(*) FROM u")) == live
    assert my_drill_dbs(my) == []
    assert my.password not in res.stderr + res.stdout
