#!/usr/bin/env python3
"""Dump throughput of a BACKUP_MYSQL source against the plain tool, in the same run.

Starts a private MariaDB (tests/lbservers.py), fills one database with --rows rows of mixed
types (text with emoji, a BLOB, JSON, DECIMAL, DATETIME(6); the default 1,800,000 rows dump
to ~1 GB, --rows 300000 to ~167 MB), then runs --rounds rounds, each running, in this order:

  plain            mariadb-dump (the options Lifeboat gives it) DB > /dev/null
  LABEL default    lifeboat backup of BACKUP_MYSQL=…/DB with the default settings (gzip,
                   gpg), into a local store
  LABEL zstd       the same with BACKUP_COMPRESSION=zstd (gpg)
  LABEL none       the same with BACKUP_COMPRESSION=none (gpg still on)
  LABEL none/none  BACKUP_COMPRESSION=none and BACKUP_ENCRYPTION=none

for each --bin LABEL=PATH (default: new=build/lifeboat), and prints the median seconds, the
median of the per-round speed ratios (plain / lifeboat; goal >= 0.9) with their spread, the
load average and the CPU seconds of each command and of mariadbd (bench/dbbench.py).

    python3 bench/mysql-dump.py --rounds 5 --bin old=/tmp/lb-old --bin new=build/lifeboat
"""

import argparse
import os
import shutil
import sys
import tempfile
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))
import dbbench  # noqa: E402
import lbservers  # noqa: E402

DUMP_OPTS = ["--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
             "--default-character-set=utf8mb4", "--quick", "--no-tablespaces",
             "--max-allowed-packet=1G"]


def bins(a):
    out = []
    for b in a.bin or [f"new={REPO / 'build' / 'lifeboat'}"]:
        label, _, path = b.rpartition("=")
        out.append((label or Path(path).name, path))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_800_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bin", action="append", help="LABEL=PATH (repeatable)")
    a = ap.parse_args()

    srv = lbservers.MariaDB()
    srv.start()
    work = Path(tempfile.mkdtemp(prefix="lb-mysql-bench."))
    try:
        srv.client(f"""CREATE DATABASE bench CHARACTER SET utf8mb4; USE bench;
CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(100), note TEXT, amount DECIMAL(20,6),
  at DATETIME(6), meta JSON, data BLOB) ENGINE=InnoDB;
INSERT INTO t SELECT seq, CONCAT('名前 😀 ', seq), REPEAT(SHA2(seq, 256), 3), seq / 7,
  TIMESTAMP('2024-01-01') + INTERVAL seq SECOND, JSON_OBJECT('n', seq, 'k', 'v'),
  UNHEX(REPEAT(SHA2(seq, 256), 4)) FROM seq_1_to_{a.rows};""")
        uri = (f"mysql://root:{urllib.parse.quote(srv.password, safe='')}@127.0.0.1:"
               f"{srv.port}/bench")
        store = work / "store"
        base = {"PATH": os.environ["PATH"], "HOME": str(work), "BACKUP_NAME": "bench",
                "BACKUP_MYSQL": uri, "BACKUP_STATE_DIR": str(work / "state"),
                "BACKUP_LOG_FILE": str(work / "log")}
        opt = work / "my.cnf"
        opt.write_text(f"[client]\nprotocol=TCP\nhost=127.0.0.1\nport={srv.port}\nuser=root\n"
                       f"password=\"{srv.password}\"\n")
        plain = ["mariadb-dump", f"--defaults-extra-file={opt}", *DUMP_OPTS, "bench"]
        with open(work / "size.sql", "wb") as f:
            dbbench.timed(plain, stdout=f)
        nbytes = (work / "size.sql").stat().st_size
        (work / "size.sql").unlink()

        def fresh():
            shutil.rmtree(store, ignore_errors=True)
            store.mkdir()

        dbbench.server_pid = srv.proc.pid
        cmds = [("plain", lambda: dbbench.timed(plain))]
        cmds += dbbench.lifeboat_rows([f"{label}={path}" for label, path in bins(a)], base,
                                      store)
        times = dbbench.rounds(cmds, a.rounds, fresh)
        dbbench.report(times, nbytes, f"mariadb-dump of {a.rows} rows")
    finally:
        srv.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
