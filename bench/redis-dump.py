#!/usr/bin/env python3
"""Redis dump throughput: `lifeboat backup` of a Redis source against the plain tool.

Starts a private redis-server (tests/lbservers.py), fills it with --mb MB of values
(--keys keys; default 500 MB in 500,000 keys; --mb 100 --keys 200000 the earlier size), then runs --rounds rounds, each running, in
this order:

  redis-cli        redis-cli --rdb /dev/null (the snapshot written nowhere; 7.0 then exits 1
                   failing to truncate /dev/null, after the whole transfer)
  LABEL default    lifeboat backup of that server alone with the default settings (gzip,
                   gpg), into a local store
  LABEL zstd       the same with BACKUP_COMPRESSION=zstd (gpg)
  LABEL none       the same with BACKUP_COMPRESSION=none (gpg still on)
  LABEL none/none  BACKUP_COMPRESSION=none and BACKUP_ENCRYPTION=none

for each --bin LABEL=PATH (default: new=build/lifeboat), and prints the median seconds, the
median of the per-round speed ratios (redis-cli / lifeboat; goal of issue #14: >= 0.9)
with their spread, the load average and the CPU seconds of each command and of
redis-server (with the fork child that writes the snapshot; bench/dbbench.py).

    python3 bench/redis-dump.py --rounds 5 --bin old=/tmp/lb-old --bin new=build/lifeboat
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


def transferred(p):
    # redis-cli 7.0 --rdb /dev/null transfers everything, then fails to ftruncate/fsync
    # /dev/null (exit 1): the transfer is what is measured.
    return b"Transfer finished with success" in p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=500)
    ap.add_argument("--keys", type=int, default=500_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bin", action="append", help="LABEL=PATH (repeatable)")
    a = ap.parse_args()
    srv = lbservers.Redis()
    srv.start()
    tmp = Path(tempfile.mkdtemp(prefix="lb-redis-bench."))
    try:
        c = srv.client()
        size = a.mb * 1_000_000 // a.keys
        rnd = os.urandom(size)
        cmds = [("SET", f"key:{i:08d}", rnd[i % 97:] + rnd[:i % 97]) for i in range(a.keys)]
        c.pipeline(cmds, batch=2000)
        c.close()
        pw = urllib.parse.quote(srv.password, safe="")
        env_cli = dict(os.environ, REDISCLI_AUTH=srv.password)
        cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(srv.port), "--no-auth-warning",
               "--rdb"]
        rdb = tmp / "size.rdb"
        dbbench.timed(cli + [str(rdb)], env_cli, transferred)
        rdb_bytes = rdb.stat().st_size
        rdb.unlink()
        store = tmp / "store"
        base = {"PATH": os.environ["PATH"], "HOME": str(tmp), "BACKUP_NAME": "bench",
                "BACKUP_STATE_DIR": str(tmp / "state"), "BACKUP_LOG_FILE": str(tmp / "log"),
                "BACKUP_REDIS": f"redis://:{pw}@127.0.0.1:{srv.port}"}

        def fresh():
            shutil.rmtree(store, ignore_errors=True)
            store.mkdir()

        dbbench.server_pid = srv.proc.pid
        rows = [("redis-cli", lambda: dbbench.timed(cli + ["/dev/null"], env_cli, transferred))]
        rows += dbbench.lifeboat_rows(a.bin or [f"new={REPO / 'build' / 'lifeboat'}"], base,
                                      store)
        times = dbbench.rounds(rows, a.rounds, fresh)
        dbbench.report(times, rdb_bytes, f"RDB of {a.keys} keys")
    finally:
        srv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
