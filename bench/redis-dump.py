#!/usr/bin/env python3
"""Redis dump throughput: `lifeboat backup` of a Redis source against the plain tool.

Starts a private redis-server (tests/lbservers.py), fills it with --mb MB of values
(--keys keys; default 100 MB in 200,000 keys), then in the same run, alternating, --repeat
times each (the fastest kept):

  * ``redis-cli``   ``redis-cli --rdb /dev/null`` (the snapshot written nowhere; 7.0 then
                    exits 1 failing to truncate /dev/null, after the whole transfer)
  * ``lb-none``     ``lifeboat backup`` of that server alone, BACKUP_COMPRESSION=none and
                    BACKUP_ENCRYPTION=none, into a local store (the snapshot streamed
                    through redis-cli's stdout, hashed, tar-framed and written)
  * ``lb-zstd``     the same with BACKUP_COMPRESSION=zstd (for scale; not the goal's row)

and prints seconds, MB/s of the RDB file's size, and lb-none's ratio to redis-cli (the
goal of issue #14: at least 0.9).

    python3 bench/redis-dump.py                  # LIFEBOAT_BIN or build/lifeboat
    python3 bench/redis-dump.py --mb 500 --repeat 5
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


def timed(argv, env=None):
    t0 = time.monotonic()
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.monotonic() - t0
    # redis-cli 7.0 --rdb /dev/null transfers everything, then fails to ftruncate/fsync
    # /dev/null (exit 1): the transfer is what is measured.
    if p.returncode != 0 and b"Transfer finished with success" not in p.stderr:
        sys.exit(f"{argv[0]} failed: {p.stderr.decode(errors='replace')[-2000:]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    lb = os.environ.get("LIFEBOAT_BIN", str(REPO / "build" / "lifeboat"))
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
        timed(cli + [str(rdb)], env_cli)
        rdb_bytes = rdb.stat().st_size
        rdb.unlink()
        rows = {"redis-cli": [], "lb-none": [], "lb-zstd": []}
        for _ in range(a.repeat):
            rows["redis-cli"].append(timed(cli + ["/dev/null"], env_cli))
            for name, comp in (("lb-none", "none"), ("lb-zstd", "zstd")):
                store = tmp / "store"
                shutil.rmtree(store, ignore_errors=True)
                store.mkdir()
                env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "BACKUP_NAME": "bench",
                       "BACKUP_LOCAL_PATH": str(store), "BACKUP_ENCRYPTION": "none",
                       "BACKUP_COMPRESSION": comp, "BACKUP_STATE_DIR": str(tmp / "state"),
                       "BACKUP_LOG_FILE": str(tmp / "log"),
                       "BACKUP_REDIS": f"redis://:{pw}@127.0.0.1:{srv.port}"}
                rows[name].append(timed([lb, "backup"], env))
        print(f"RDB file: {rdb_bytes / 1e6:.1f} MB ({a.keys} keys), best of {a.repeat}")
        print(f"{'tool':<10} {'seconds':>8} {'MB/s':>8}")
        best = {k: min(v) for k, v in rows.items()}
        for k, t in best.items():
            print(f"{k:<10} {t:8.2f} {rdb_bytes / 1e6 / t:8.1f}")
        print(f"lb-none / redis-cli speed ratio: {best['redis-cli'] / best['lb-none']:.2f} "
              "(goal >= 0.9)")
    finally:
        srv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
