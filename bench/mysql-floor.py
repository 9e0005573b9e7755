#!/usr/bin/env python3
"""What merely consuming a MariaDB dump costs, against `mariadb-dump > /dev/null` (issue #14).

Starts a private MariaDB (tests/lbservers.py), fills it as bench/mysql-dump.py does, then runs
--rounds rounds, each running these in this order (no Lifeboat involved):

  devnull       mariadb-dump … DB > /dev/null              (the goal's baseline)
  pipe-cat      mariadb-dump … DB | cat > /dev/null         (any reader on a pipe)
  pipe-sha256   mariadb-dump … DB | sha256sum > /dev/null   (a reader that hashes)
  file          mariadb-dump … DB > FILE && sync FILE        (the dump kept on disk, durably)

and prints each one's median seconds and its median speed ratio to devnull (per round) with
the spread. A Lifeboat backup does at least what `pipe-cat` and `file` do (a pipe from the
tool, an fsynced archive) plus the SHA-256 of every byte.

    python3 bench/mysql-floor.py --rows 300000 --rounds 5
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import lbservers  # noqa: E402

DUMP_OPTS = ("--single-transaction --routines --triggers --events --hex-blob "
             "--default-character-set=utf8mb4 --quick --no-tablespaces --max-allowed-packet=1G")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    srv = lbservers.MariaDB()
    srv.start()
    work = Path(tempfile.mkdtemp(prefix="lb-mysql-floor."))
    try:
        srv.client(f"""CREATE DATABASE bench CHARACTER SET utf8mb4; USE bench;
CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(100), note TEXT, amount DECIMAL(20,6),
  at DATETIME(6), meta JSON, data BLOB) ENGINE=InnoDB;
INSERT INTO t SELECT seq, CONCAT('名前 😀 ', seq), REPEAT(SHA2(seq, 256), 3), seq / 7,
  TIMESTAMP('2024-01-01') + INTERVAL seq SECOND, JSON_OBJECT('n', seq, 'k', 'v'),
  UNHEX(REPEAT(SHA2(seq, 256), 4)) FROM seq_1_to_{a.rows};""")
        opt = work / "my.cnf"
        opt.write_text(f"[client]\nprotocol=TCP\nhost=127.0.0.1\nport={srv.port}\nuser=root\n"
                       f"password=\"{srv.password}\"\n")
        dump = f"mariadb-dump --defaults-extra-file={opt} {DUMP_OPTS} bench"
        out = work / "dump.sql"
        cmds = {"devnull": f"{dump} > /dev/null", "pipe-cat": f"{dump} | cat > /dev/null",
                "pipe-sha256": f"{dump} | sha256sum > /dev/null",
                "file": f"{dump} > {out} && sync {out}"}
        times = {k: [] for k in cmds}
        load0 = os.getloadavg()
        for r in range(a.rounds):
            for k, c in cmds.items():
                out.unlink(missing_ok=True)
                t0 = time.monotonic()
                subprocess.run(["bash", "-o", "pipefail", "-c", c], check=True)
                times[k].append(time.monotonic() - t0)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
                  flush=True)
        print(f"\n{a.rows} rows, {a.rounds} rounds; load average {load0[0]:.2f} -> "
              f"{os.getloadavg()[0]:.2f}")
        print("| row | median s | speed / devnull (median) | spread (min-max) |")
        print("|---|---|---|---|")
        for k, v in times.items():
            rs = [b / x for b, x in zip(times["devnull"], v)]
            print(f"| {k} | {statistics.median(v):.2f} | {statistics.median(rs):.2f} | "
                  f"{min(rs):.2f}-{max(rs):.2f} |")
    finally:
        srv.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
