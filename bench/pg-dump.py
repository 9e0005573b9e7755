#!/usr/bin/env python3
"""PostgreSQL dump throughput: `lifeboat backup` of a BACKUP_POSTGRES source against
`pg_dump -Fc -Z0 DB > /dev/null` (issue #18, "dump speed", goal >= 0.9), in the same run.

Starts a private PostgreSQL (tests/lbservers.py, scripts/pg-test-server.sh), fills one
database with --rows rows (text, bytea of pseudo-random bytes, numeric, timestamptz,
jsonb; the default 6,000,000 rows dump to ~1 GB, --rows 1000000 to ~170 MB), then runs
--rounds rounds, each running, in this order:

  plain            pg_dump -Fc -Z0 --dbname=… > /dev/null
  LABEL default    lifeboat backup of BACKUP_POSTGRES=…/bench with the default settings
                   (gzip, gpg), into a local store
  LABEL zstd       the same with BACKUP_COMPRESSION=zstd (gpg)
  LABEL none       the same with BACKUP_COMPRESSION=none (gpg still on)
  LABEL none/none  BACKUP_COMPRESSION=none and BACKUP_ENCRYPTION=none

for each --bin LABEL=PATH (default: new=build/lifeboat), and prints the median seconds, the
median of the per-round speed ratios (plain / lifeboat) with their spread, the load average
and the CPU seconds of each command and of the server (the postmaster and the backends it
reaped; bench/dbbench.py).

    python3 bench/pg-dump.py --rounds 5 --bin old=/tmp/lb-old --bin new=build/lifeboat
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))
import dbbench  # noqa: E402
import lbservers  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=6_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bin", action="append", help="LABEL=PATH (repeatable)")
    a = ap.parse_args()
    srv = lbservers.Postgres().start()
    work = Path(tempfile.mkdtemp(prefix="lb-pg-bench."))
    try:
        pw = urllib.parse.quote(srv.password, safe="")
        uri = f"postgresql://postgres:{pw}@127.0.0.1:{srv.port}/bench"
        admin = f"postgresql://postgres:{pw}@127.0.0.1:{srv.port}/postgres"
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", admin, "-c",
                        "CREATE DATABASE bench"], check=True)
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", uri, "-c", f"""
CREATE TABLE t (id int PRIMARY KEY, name text, amount numeric(20,6), at timestamptz,
  meta jsonb, data bytea);
INSERT INTO t SELECT i, 'name ' || i || ' ' || md5(i::text), i / 7.0,
  '2024-01-01'::timestamptz + i * interval '1 second', jsonb_build_object('n', i, 'k', 'v'),
  decode(md5(i::text) || md5((i + 1)::text) || md5((i * 7)::text), 'hex')
  FROM generate_series(1, {a.rows}) i;"""], check=True)
        plain = ["pg_dump", "-Fc", "-Z0", f"--dbname={uri}"]
        with open(work / "size.dump", "wb") as f:
            dbbench.timed(plain, stdout=f)
        nbytes = (work / "size.dump").stat().st_size
        (work / "size.dump").unlink()
        store = work / "store"
        base = {"PATH": os.environ["PATH"], "HOME": str(work), "BACKUP_NAME": "bench",
                "BACKUP_POSTGRES": uri, "BACKUP_STATE_DIR": str(work / "state"),
                "BACKUP_LOG_FILE": str(work / "log")}

        def fresh():
            shutil.rmtree(store, ignore_errors=True)
            store.mkdir()

        pidfile = srv.workdir / "srv" / "data" / "postmaster.pid"
        dbbench.server_pid = int(pidfile.read_text().split()[0])
        rows = [("plain", lambda: dbbench.timed(plain))]
        rows += dbbench.lifeboat_rows(a.bin or [f"new={REPO / 'build' / 'lifeboat'}"], base,
                                      store)
        times = dbbench.rounds(rows, a.rounds, fresh)
        dbbench.report(times, nbytes, f"pg_dump -Fc -Z0 of {a.rows} rows")
    finally:
        srv.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
