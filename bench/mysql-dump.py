#!/usr/bin/env python3
"""Dump throughput of a BACKUP_MYSQL source against the plain tool, in the same run.

Starts a private MariaDB (tests/lbservers.py), fills one database with ROWS rows of mixed
types (text with emoji, a BLOB, JSON, DECIMAL, DATETIME(6)), then alternates, --repeat
times, keeping each side's fastest:

  plain     mariadb-dump (the options Lifeboat gives it) DB > /dev/null
  lifeboat  lifeboat backup with BACKUP_MYSQL=…/DB, BACKUP_COMPRESSION=none and
            BACKUP_ENCRYPTION=none (the dump through the member sink, tar and SHA-256
            into the local store)

and prints seconds, MB/s of dump bytes and lifeboat's speed as a fraction of the plain
tool's (goal ≥ 0.9).

    python3 bench/mysql-dump.py --rows 1000000 --repeat 3
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import lbservers  # noqa: E402

DUMP_OPTS = ["--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
             "--default-character-set=utf8mb4", "--quick", "--no-tablespaces",
             "--max-allowed-packet=1G"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bin", default=str(REPO / "build" / "lifeboat"))
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
        key_env = {"PATH": os.environ["PATH"], "BACKUP_NAME": "bench",
                   "BACKUP_LOCAL_PATH": str(store), "BACKUP_ENCRYPTION": "none",
                   "BACKUP_COMPRESSION": "none", "BACKUP_MYSQL": uri,
                   "BACKUP_STATE_DIR": str(work / "state"), "BACKUP_LOG_FILE": str(work / "log"),
                   "BACKUP_KEEP_LAST": "1"}
        opt = work / "my.cnf"
        opt.write_text(f"[client]\nprotocol=TCP\nhost=127.0.0.1\nport={srv.port}\nuser=root\n"
                       f"password=\"{srv.password}\"\n")
        best = {"plain": None, "lifeboat": None}
        nbytes = 0
        for _ in range(a.repeat):
            with open(os.devnull, "wb") as null:
                t0 = time.monotonic()
                subprocess.run(["mariadb-dump", f"--defaults-extra-file={opt}", *DUMP_OPTS,
                                "bench"], stdout=null, check=True)
                best["plain"] = min(best["plain"] or 1e9, time.monotonic() - t0)
            shutil.rmtree(store, ignore_errors=True)
            store.mkdir()
            t0 = time.monotonic()
            subprocess.run([a.bin, "backup"], env=key_env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            best["lifeboat"] = min(best["lifeboat"] or 1e9, time.monotonic() - t0)
        dump = subprocess.Popen(["mariadb-dump", f"--defaults-extra-file={opt}", *DUMP_OPTS,
                                 "bench"], stdout=subprocess.PIPE)
        while chunk := dump.stdout.read(1 << 20):
            nbytes += len(chunk)
        dump.wait()
        print(f"rows {a.rows}, dump {nbytes / 1e6:.0f} MB, best of {a.repeat}")
        for k, v in best.items():
            print(f"  {k:9} {v:7.2f} s  {nbytes / 1e6 / v:7.1f} MB/s")
        print(f"  lifeboat / plain speed: {best['plain'] / best['lifeboat']:.2f} (goal >= 0.9)")
    finally:
        srv.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
