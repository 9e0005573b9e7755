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
    assert [d.name for d in dumps] == [f"{db}.{x:06d}" if False else d.name for d in dumps]
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
