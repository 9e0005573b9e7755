"""MySQL/MariaDB sources against a real server (Debian's mariadb-server, a session fixture).

root's password contains '@', ':' and '/', so every URI here carries a percent-encoded
password. Each test works in databases of its own. Assertions compare fingerprints taken
from the server (each table's ordered rows hashed, every object's definition) before the
backup and after the restore.
"""

import hashlib
import os
import re
import subprocess
import threading
import urllib.parse
import uuid
from pathlib import Path

import pytest

from conftest import (EXIT_CONFIG, EXIT_SOURCE, assert_no_archive, gpg_decrypt_pipe_tar,
                      need_tool, parse_ts_stdout)
from waiting import HANG


class My:
    def __init__(self, server):
        self.server = server
        self.host = os.environ["LB_MYSQL_HOST"]
        self.port = os.environ["LB_MYSQL_PORT"]
        self.user = os.environ["LB_MYSQL_USER"]
        self.password = os.environ["LB_MYSQL_PASSWORD"]
        self.created = []
        self.users = []

    def uri(self, db=None, password=None, scheme="mysql", query=""):
        pw = urllib.parse.quote(self.password if password is None else password, safe="")
        base = f"{scheme}://{self.user}:{pw}@{self.host}:{self.port}"
        base = f"{base}/{urllib.parse.quote(db, safe='')}" if db is not None else base
        return base + (f"?{query}" if query else "")

    def client_args(self, db=None):
        args = ["mariadb", "--no-defaults", "--protocol=TCP", "-h", self.host, "-P", self.port,
                "-u", self.user, "--batch", "--skip-column-names", "--binary-mode",
                "--default-character-set=utf8mb4"]
        return args + ([db] if db else [])

    def env(self):
        return dict(os.environ, MYSQL_PWD=self.password)

    def sql(self, db, sql, check=True):
        p = subprocess.run(self.client_args(db), input=sql.encode(), capture_output=True,
                           env=self.env(), timeout=900)
        if check:
            assert p.returncode == 0, f"mariadb failed: {p.stderr.decode(errors='replace')}"
        return p.stdout.decode(errors="replace").strip()

    def new_db(self, prefix="lb"):
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.sql(None, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        self.created.append(name)
        return name

    def drop_db(self, name):
        self.sql(None, f"DROP DATABASE IF EXISTS `{name}`")

    def databases(self):
        return set(self.sql(None, "SHOW DATABASES").split("\n"))

    def cleanup(self):
        for d in self.created:
            self.sql(None, f"DROP DATABASE IF EXISTS `{d}`", check=False)
        for u in self.users:
            self.sql(None, f"DROP USER IF EXISTS {u}", check=False)
        # A test's staging leftovers must not outlive it.
        for d in self.databases():
            if d.startswith(("lifeboat_restore_", "lifeboat_old_")):
                self.sql(None, f"DROP DATABASE IF EXISTS `{d}`", check=False)


@pytest.fixture
def my(mariadb_server):
    for t in ("mariadb", "mariadb-dump"):
        need_tool(t)
    m = My(mariadb_server)
    try:
        yield m
    finally:
        m.cleanup()


def my_env(uris, **extra):
    env = {"BACKUP_MYSQL": "\n".join(uris), "BACKUP_DIRS": None, "BACKUP_FILES": None}
    env.update(extra)
    return env


ROWS = 200_000

SCHEMA = """
CREATE TABLE customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) CHARACTER SET utf8mb4 NOT NULL,
  note TEXT,
  balance DECIMAL(20,6) NOT NULL DEFAULT 0,
  created DATETIME(6) NOT NULL,
  meta JSON,
  photo BLOB,
  name_len INT GENERATED ALWAYS AS (CHAR_LENGTH(name)) STORED
) ENGINE=InnoDB;
CREATE TABLE orders (
  id INT AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT, at DATETIME(6))
  ENGINE=InnoDB;
CREATE TABLE logs (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(200)) ENGINE=MyISAM;
CREATE VIEW rich AS SELECT id, name, balance FROM customers WHERE balance > 900;
CREATE VIEW rich_count AS SELECT COUNT(*) AS n FROM rich;
CREATE TRIGGER customers_ai AFTER INSERT ON customers FOR EACH ROW
  INSERT INTO audit (customer_id, at) VALUES (NEW.id, NEW.created);
CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
CREATE PROCEDURE add_order(IN c INT, IN a DECIMAL(12,2))
  INSERT INTO orders (customer_id, amount) VALUES (c, a);
CREATE EVENT purge_logs ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00'
  DO DELETE FROM logs WHERE id < 0;
"""


def populate(my, db, rows=ROWS):
    my.sql(db, SCHEMA + f"""
INSERT INTO customers (name, note, balance, created, meta, photo)
SELECT CONCAT('名前 😀 ', seq), IF(seq % 7 = 0, NULL, REPEAT('ü', seq % 50)),
       (seq * 7919 % 100000) / 97, TIMESTAMP('2024-02-29 12:34:56') + INTERVAL seq MICROSECOND
         + INTERVAL seq SECOND,
       JSON_OBJECT('n', seq, 'party', '🎉', 'odd', seq % 2 = 1),
       CONCAT(UNHEX(SHA2(seq, 256)), CHAR(0), CHAR(255))
FROM seq_1_to_{rows};
INSERT INTO orders (customer_id, amount) SELECT seq, seq % 1000 + 0.25 FROM seq_1_to_{rows // 4};
INSERT INTO logs (msg) SELECT CONCAT('log ', seq) FROM seq_1_to_5000;
CALL add_order(1, 99.99);
""")


def table_hash(my, db, table):
    """An ordered checksum of every row (the bytes as the client prints them)."""
    p = subprocess.run(my.client_args(db), input=f"SELECT * FROM `{table}` ORDER BY 1".encode(),
                       capture_output=True, env=my.env(), timeout=900)
    assert p.returncode == 0, p.stderr
    return p.stdout.count(b"\n"), hashlib.sha256(p.stdout).hexdigest()


def definitions(my, db):
    """Every object's definition, as the server shows it."""
    out = {}
    for t in my.sql(db, "SHOW FULL TABLES").split("\n"):
        if not t:
            continue
        name, kind = t.split("\t")
        what = "VIEW" if kind == "VIEW" else "TABLE"
        out[f"{what} {name}"] = my.sql(db, f"SHOW CREATE {what} `{name}`")
    queries = {
        "TRIGGER": f"SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='{db}'",
        "PROCEDURE": f"SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='{db}' AND ROUTINE_TYPE='PROCEDURE'",
        "FUNCTION": f"SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='{db}' AND ROUTINE_TYPE='FUNCTION'",
        "EVENT": f"SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA='{db}'",
    }
    for kind, q in queries.items():
        for name in my.sql(None, q).split("\n"):
            if name:
                # The creation time is the only part a restore does not keep.
                shown = my.sql(db, f"SHOW CREATE {kind} `{name}`").split("\t")
                out[f"{kind} {name}"] = "\t".join(s for s in shown
                                                  if not re.match(r"^\d{4}-\d\d-\d\d \d", s))
    return out


def fingerprint(my, db):
    fp = {"defs": definitions(my, db)}
    for t in my.sql(db, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'").split("\n"):
        if t:
            fp[t.split("\t")[0]] = table_hash(my, db, t.split("\t")[0])
    return fp


def wreck(my, db):
    my.sql(db, """
DELETE FROM customers WHERE id % 3 = 0;
UPDATE customers SET name = 'changed' WHERE id < 100;
DELETE FROM logs WHERE id > 10;
DROP VIEW rich_count;
DROP TRIGGER customers_ai;
DROP PROCEDURE add_order;
CREATE PROCEDURE add_order(IN c INT) SELECT c;
CREATE TABLE extra (x INT);
CREATE VIEW extra_view AS SELECT 1 AS one;
""")


def archived_dump(lb, ts, source, db):
    out = gpg_decrypt_pipe_tar(lb.archive(ts), lb.keyfile, lb.tmp / "manual")
    return sorted((out / "mysql" / source).glob(f"{db}.sql*")), out


def test_roundtrip_rich_database(lb, my):
    """InnoDB and MyISAM, utf8mb4 with emoji, BLOBs, JSON, DECIMAL, DATETIME(6), a generated
    column, views, a trigger, a function, a procedure, an event, a foreign key, 200k rows:
    the same ordered checksums and definitions after restore, and what was created after
    the backup is gone."""
    db = my.new_db()
    populate(my, db)
    before = fingerprint(my, db)
    assert before["customers"][0] == ROWS and before["audit"][0] == ROWS
    env = my_env([my.uri(db)])
    ts = lb.backup(env)

    wreck(my, db)
    assert fingerprint(my, db) != before
    res = lb.restore(ts, env)
    assert fingerprint(my, db) == before
    left = [d for d in my.databases() if d.startswith(("lifeboat_restore_", "lifeboat_old_"))]
    assert left == [], left
    # The trigger works on the restored table (it was recreated on it).
    my.sql(db, "INSERT INTO customers (name, created) VALUES ('new', NOW(6))")
    assert my.sql(db, "SELECT COUNT(*) FROM audit") == str(ROWS + 1)
    assert my.password not in res.stderr + res.stdout
    log = (lb.tmp / "backup.log").read_text()
    assert my.password not in log and urllib.parse.quote(my.password, safe="") not in log


def test_archive_restores_with_plain_tools(lb, my):
    """gpg -d | tar x, then `mariadb db < DB.sql`: no lifeboat needed to get the data back."""
    db = my.new_db()
    populate(my, db)
    before = fingerprint(my, db)
    ts = lb.backup(my_env([my.uri(db, scheme="mariadb")]))

    dumps, _ = archived_dump(lb, ts, db, db)
    # Over 16 MiB: DB.sql.000000, DB.sql.000001, ... whose concatenation is the dump.
    assert len(dumps) >= 2 and all(re.fullmatch(re.escape(db) + r"\.sql\.\d{6}", d.name)
                                   for d in dumps), dumps
    fresh = my.new_db("manual")
    cat = subprocess.Popen(["cat", *map(str, dumps)], stdout=subprocess.PIPE)
    p = subprocess.run(my.client_args(fresh), stdin=cat.stdout, capture_output=True,
                       env=my.env(), timeout=900)
    cat.wait()
    assert p.returncode == 0, p.stderr
    assert fingerprint(my, fresh) == before


def test_restore_creates_missing_database(lb, my):
    db = my.new_db()
    my.sql(db, "CREATE TABLE t (n INT PRIMARY KEY) ENGINE=InnoDB;"
               "INSERT INTO t SELECT seq FROM seq_1_to_1000;"
               "CREATE VIEW v AS SELECT SUM(n) AS s FROM t")
    env = my_env([my.uri(db)])
    ts = lb.backup(env)
    my.drop_db(db)
    lb.restore(ts, env)
    assert my.sql(db, "SELECT s FROM v") == str(sum(range(1, 1001)))


def test_uri_without_database_backs_up_all_and_users(lb, my):
    """A server-wide URI: every database but the system ones, plus users and grants,
    restored first (a dropped user comes back with its grants)."""
    a, b = my.new_db("all"), my.new_db("all")
    user = f"lbu_{uuid.uuid4().hex[:8]}"
    my.users.append(f"'{user}'@'%'")
    my.sql(None, f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw#\"1'; "
                 f"GRANT SELECT, INSERT ON `{a}`.* TO '{user}'@'%'")
    my.sql(a, "CREATE TABLE t (v INT); INSERT INTO t SELECT seq FROM seq_1_to_100")
    my.sql(b, "CREATE TABLE u (v VARCHAR(10)) ENGINE=MyISAM; INSERT INTO u VALUES ('🙂')")
    before = (fingerprint(my, a), fingerprint(my, b))
    grants = my.sql(None, f"SHOW GRANTS FOR '{user}'@'%'")
    env = my_env([my.uri()])
    ts = lb.backup(env)

    out = gpg_decrypt_pipe_tar(lb.archive(ts), lb.keyfile, lb.tmp / "manual")
    members = {p.name for p in (out / "mysql" / my.host).iterdir()}
    assert {f"{a}.sql", f"{b}.sql", "users.grants.sql"} <= members
    assert not members & {"mysql.sql", "sys.sql", "information_schema.sql",
                          "performance_schema.sql"}, members

    res = lb.run(["restore", ts, "--dry-run"], env)
    assert "***" in res.stdout and my.password not in res.stdout

    my.drop_db(a)
    my.sql(b, "DELETE FROM u")
    my.sql(None, f"DROP USER '{user}'@'%'")
    lb.restore(ts, env)
    assert (fingerprint(my, a), fingerprint(my, b)) == before
    assert my.sql(None, f"SHOW GRANTS FOR '{user}'@'%'") == grants
    # Its password came back too (the hash is in CREATE USER).
    p = subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h", my.host, "-P",
                        my.port, "-u", user, "-e", f"SELECT COUNT(*) FROM `{a}`.t"],
                       capture_output=True, text=True, env=dict(os.environ, MYSQL_PWD='pw#"1'))
    assert p.returncode == 0 and "100" in p.stdout, p.stderr


def test_writer_during_the_dump_sees_one_snapshot(lb, my):
    """A transactional writer moves money between accounts while the dump runs: the
    archive holds the accounts as they were when the dump's snapshot was taken (the sum
    kept), not the writer's later state. The backup is held (SIGSTOP) while mariadb-dump
    is inside the big table dumped before the accounts, so the writes surely fall inside
    the dump."""
    db = my.new_db()
    my.sql(db, """
CREATE TABLE a_big (id INT PRIMARY KEY, pad VARCHAR(1000)) ENGINE=InnoDB;
INSERT INTO a_big SELECT seq, REPEAT(SHA2(seq, 256), 15) FROM seq_1_to_40000;
CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB;
INSERT INTO accounts SELECT seq, 1000 FROM seq_1_to_100;
""")
    total = my.sql(db, "SELECT SUM(balance) FROM accounts")
    at_snapshot = table_hash(my, db, "accounts")
    env = my_env([my.uri(db)])
    proc = lb.popen(["backup"], env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stopped = False
    try:
        # Wait for the dump's query on a_big, then hold the backup: the dump blocks there.
        import time
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            q = my.sql(None, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
                             "INFO LIKE '%FROM `a_big`%' AND INFO NOT LIKE '%PROCESSLIST%'")
            if q == "1":
                break
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, 19)  # SIGSTOP
        stopped = True
        assert my.sql(None, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
                            "INFO LIKE '%FROM `a_big`%' AND INFO NOT LIKE '%PROCESSLIST%'") == "1"
        script = "".join(
            f"START TRANSACTION; UPDATE accounts SET balance = balance - {i} WHERE id = {i % 100 + 1};"
            f" UPDATE accounts SET balance = balance + {i} WHERE id = {(i * 7) % 100 + 1}; COMMIT;"
            for i in range(1, 301))
        my.sql(db, script)
        assert my.sql(db, "SELECT SUM(balance) FROM accounts") == total
        assert table_hash(my, db, "accounts") != at_snapshot
    finally:
        if stopped:
            os.kill(proc.pid, 18)  # SIGCONT
        out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    ts = parse_ts_stdout(type("R", (), {"stdout": out.decode()})())

    after_writes = table_hash(my, db, "accounts")
    lb.restore(ts, env)
    assert my.sql(db, "SELECT SUM(balance) FROM accounts") == total
    assert table_hash(my, db, "accounts") == at_snapshot != after_writes


@pytest.mark.parametrize("case", ["wrong_password", "unreachable", "no_such_database",
                                  "bad_option"])
def test_bad_source_fails_the_run(lb, my, case):
    db = my.new_db()
    if case == "wrong_password":
        uri, code, needle = my.uri(db, password="not-the-password"), EXIT_SOURCE, "Access denied"
    elif case == "unreachable":
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        uri = f"mysql://{my.user}:x%40y@127.0.0.1:{port}/{db}"
        code, needle = EXIT_SOURCE, "cannot connect"
    elif case == "no_such_database":
        uri, code, needle = my.uri("no_such_" + uuid.uuid4().hex[:6]), EXIT_SOURCE, "Unknown database"
    else:
        uri, code, needle = my.uri(db, query="sslfoo=1"), EXIT_CONFIG, "unknown option"
    env = my_env([uri], BACKUP_DIRS=f"{lb.src}:data")
    res = lb.run(["backup"], env, check=code, timeout=HANG)
    err = [l for l in res.stderr_lines() if "error:" in l and needle in l]
    assert len(err) == 1, res
    assert "BACKUP_MYSQL" in err[0] or "MySQL" in err[0]
    assert "***" in err[0]
    assert "not-the-password" not in res.stderr and my.password not in res.stderr
    assert urllib.parse.quote(my.password, safe="") not in res.stderr
    assert_no_archive(lb)


def descends_from(pid, root):
    """Is process `pid` (a string) `root` or below it? False once it is gone."""
    p = int(pid)
    for _ in range(64):
        if p == root:
            return True
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            return False
        p = int(stat[stat.rindex(")") + 2:].split()[1])
        if p <= 1:
            return False
    return False


def scan_processes(names, needles, skip, root):
    """(seen, hits): which of `names` run now below lifeboat (pid `root`: other tests'
    clients, in other workers, are not its), and any process but `skip` and lifeboat whose
    argv or environment holds a needle."""
    seen, hits = set(), []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in skip:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            envb = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        prog = os.path.basename(cmd.split(b"\0")[0]).decode(errors="replace")
        if prog == "lifeboat":
            continue  # lifeboat itself, or its child between fork and exec: BACKUP_MYSQL
        if (prog in names and b"\0--version\0" not in cmd  # the version probe has no secret
                and descends_from(pid, root)):
            seen.add(prog)
            assert b"--defaults-extra-file=/dev/fd/3" in cmd
        hits += [(pid, prog, where) for n in needles
                 for where, blob in (("argv", cmd), ("environ", envb)) if n in blob]
    return seen, hits


def test_password_never_in_argv_or_environment(lb, my):
    """While mariadb-dump (backup) and mariadb (restore) run, no process but lifeboat
    itself (whose BACKUP_MYSQL holds it) shows the password in argv or environ."""
    db = my.new_db()
    populate(my, db, rows=100_000)
    needles = [my.password.encode(), urllib.parse.quote(my.password, safe="").encode()]
    env = my_env([my.uri(db)])
    for cmd, tool in ((["backup"], "mariadb-dump"), (["restore", None, "--yes"], "mariadb")):
        if cmd[0] == "restore":
            cmd[1] = ts
        proc = lb.popen(cmd, env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        seen, hits, scans = set(), [], 0
        try:
            while proc.poll() is None:
                s, h = scan_processes({tool}, needles, {os.getpid(), proc.pid}, proc.pid)
                seen |= s
                hits += h
                scans += 1
        finally:
            if proc.poll() is None:  # a failed check must not leave the run going
                proc.kill()
                proc.wait()
        out = proc.stdout.read().decode()
        assert proc.returncode == 0
        assert tool in seen, f"{tool} never observed in {scans} scans: the check proved nothing"
        assert not hits, hits
        if cmd[0] == "backup":
            ts = out.strip()


def test_failed_restore_changes_nothing(lb, my):
    """The staged load fails (a dump that is not SQL): the database stays as it was, and no
    staging database is left."""
    db = my.new_db()
    my.sql(db, "CREATE TABLE t (n INT) ENGINE=InnoDB; INSERT INTO t VALUES (1), (2)")
    env = my_env([my.uri(db)])
    ts = lb.backup(env)
    my.sql(db, "INSERT INTO t VALUES (3); CREATE VIEW v AS SELECT 1")
    before = fingerprint(my, db)
    # The restore runs as a user who may not create the staging database.
    my.users.append("'lbweak'@'%'")
    my.sql(None, "CREATE OR REPLACE USER 'lbweak'@'%' IDENTIFIED BY 'pw-w3ak'; "
                 f"GRANT ALL ON `{db}`.* TO 'lbweak'@'%'")
    weak = f"mysql://lbweak:pw-w3ak@{my.host}:{my.port}/{db}"
    res = lb.run(["restore", ts, "--yes"], my_env([weak]), check=EXIT_SOURCE)
    err = [l for l in res.stderr_lines() if "error:" in l and "lifeboat_restore_" in l]
    assert len(err) == 1 and "MySQL" in err[0] and "pw-w3ak" not in res.stderr, res
    assert not [l for l in res.stderr_lines() if "rollback" in l], res
    assert fingerprint(my, db) == before
    assert not [d for d in my.databases() if d.startswith("lifeboat_")]


def crash_fill(my, db, v):
    """The crash test's database at version v ('new': what the backup holds, 'old': what the
    restore replaces); its objects differ too."""
    my.drop_db(db)
    my.sql(None, f"CREATE DATABASE `{db}`")
    n = 3 if v == "new" else 5
    my.sql(db, f"""
CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB;
CREATE TABLE child (id INT PRIMARY KEY, t_id INT, FOREIGN KEY (t_id) REFERENCES t (id)) ENGINE=InnoDB;
CREATE TABLE m (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=MyISAM;
CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(20));
INSERT INTO t SELECT seq, '{v}' FROM seq_1_to_{n};
INSERT INTO child SELECT seq, seq FROM seq_1_to_{n};
INSERT INTO m SELECT seq, '{v} 🙂' FROM seq_1_to_{n};
CREATE VIEW v_{v} AS SELECT COUNT(*) AS n FROM t;
CREATE VIEW v_both AS SELECT v FROM t WHERE id = 1;
CREATE TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW INSERT INTO log (what) VALUES ('{v}');
CREATE PROCEDURE p() SELECT '{v}';
CREATE FUNCTION f_{v}() RETURNS INT DETERMINISTIC RETURN {n};
CREATE EVENT e ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01' DO DELETE FROM log WHERE what = '{v}';
""")


def my_leftovers(my):
    return sorted(d for d in my.databases() if d.startswith(("lifeboat_restore_", "lifeboat_old_")))


def test_restore_killed_at_every_step(lb, my):
    """Killed before each RENAME TABLE, each object's creation, each journal write and some
    file steps, then the next command recovers: the database and the files are both old or
    both new, never mixed, and no staging database is left. A swap that fails before or
    after its RENAME TABLE leaves the old database."""
    from test_restore_crash import Crash, crash_cases
    db = my.new_db("lbcrash")
    crash_fill(my, db, "new")
    new_fp = fingerprint(my, db)
    c = Crash(lb, {"BACKUP_MYSQL": my.uri(db)})
    crash_fill(my, db, "old")
    old_fp = fingerprint(my, db)
    assert old_fp != new_fp

    cases = crash_cases(c, lb.tmp, points=("mysql.swap", "mysql.objects", "journal.write",
                                           "restore.swap"))
    assert fingerprint(my, db) == new_fp and my_leftovers(my) == []
    cases = [(p, k) for p, k in cases if p != "restore.swap" or k in (1, 5)]
    commands = ("backup", "restore", "prune")
    versions = set()
    for i, (point, k) in enumerate(cases):
        c.reset()
        crash_fill(my, db, "old")
        res = c.restore(fault=f"{point}@{k}:kill", check=False)
        assert res.returncode == -9, f"{point}@{k} did not kill: {res!r}"
        how = commands[i % len(commands)]
        lb.run(["backup"] if how == "backup" else
               ["prune"] if how == "prune" else
               ["restore", "2001-01-01-000000", "--yes"], c.env,
               check=8 if how == "restore" else True)
        files = c.assert_one_version(f"killed at {point}@{k}, then {how}")
        got = fingerprint(my, db)
        assert got == (new_fp if files == "new" else old_fp), \
            f"{point}@{k}: files are {files} but the database is not"
        assert my_leftovers(my) == [], f"{point}@{k}: left {my_leftovers(my)}"
        assert not c.journal.exists()
        versions.add(files)
    assert versions == {"old", "new"}

    # Failures (not kills): before the RENAME, and after it while recreating the objects.
    for fault in ("mysql.swap@1:fail", "mysql.objects@1:fail", "mysql.objects@4:fail"):
        c.reset()
        crash_fill(my, db, "old")
        res = c.restore(fault=fault, check=EXIT_SOURCE)
        assert "fault injected" in res.stderr
        assert c.assert_one_version(fault) == "old"
        assert fingerprint(my, db) == old_fp, fault
        assert my_leftovers(my) == [] and not c.journal.exists()


def test_tls_options_reach_the_tools(lb, my, tmp_path):
    """A user that the server admits over TLS only: without `ssl` the run fails, with
    `?ssl=true` or `?ssl-mode=VERIFY_CA&ssl-ca=` both the dump and the restore connect, and
    a CA that did not sign the server's certificate fails the verification."""
    db = my.new_db("tls")
    my.sql(db, "CREATE TABLE t (n INT); INSERT INTO t SELECT seq FROM seq_1_to_500")
    my.users.append("'lbtls'@'%'")
    my.sql(None, "CREATE OR REPLACE USER 'lbtls'@'%' IDENTIFIED BY 'tls-pw' REQUIRE SSL; "
                 "GRANT ALL ON *.* TO 'lbtls'@'%'")
    base = f"mysql://lbtls:tls-pw@{my.host}:{my.port}/{db}"
    res = lb.run(["backup"], my_env([base]), check=EXIT_SOURCE)
    assert [l for l in res.stderr_lines() if "error:" in l and "Access denied" in l], res

    ca = os.environ["LB_MYSQL_CA"]
    for query in ("ssl=true", f"ssl-mode=VERIFY_CA&ssl-ca={urllib.parse.quote(ca)}"):
        env = my_env([f"{base}?{query}"])
        ts = lb.backup(env)
        my.sql(db, "DELETE FROM t WHERE n > 100")
        lb.restore(ts, env)
        assert my.sql(db, "SELECT COUNT(*), SUM(n) FROM t") == f"500\t{sum(range(1, 501))}"

    other = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(tmp_path / "other.key"), "-out", str(other), "-days", "1", "-subj",
                    "/CN=other"], check=True, capture_output=True)
    res = lb.run(["backup"], my_env([f"{base}?ssl-mode=VERIFY_CA&ssl-ca={other}"]),
                 check=EXIT_SOURCE)
    err = [l for l in res.stderr_lines() if "error:" in l and "MySQL" in l]
    assert len(err) == 1 and "tls-pw" not in res.stderr, res
