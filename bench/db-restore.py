#!/usr/bin/env python3
"""A PostgreSQL restore, this build against another (before/after), in the same run.

Starts a private PostgreSQL (tests/lbservers.py), fills one database with --mb MiB of
rows (a bytea of random bytes and a text column, so gzip and gpg have real work), backs it
up once with the default settings (parallel gzip, passphrase encryption), then alternates
--repeat times a `lifeboat restore --yes` of that archive by each binary, and prints each
one's median and spread, the ratio, and how many times each decrypted the archive (a gpg
shim on PATH counts them):

    python3 bench/db-restore.py --mb 512 --repeat 5 --compare-bin /path/to/old/lifeboat

The restore is the whole command: the verifying pass, pg_restore into the staging
database, the swap. Reading the archive once instead of twice saves one decryption,
decompression and hashing of the archive; pg_restore's own cost is the same for both.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import lbservers  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--bin", default=str(REPO / "build" / "lifeboat"))
    ap.add_argument("--compare-bin", required=True, help="the other lifeboat binary")
    a = ap.parse_args()

    srv = lbservers.Postgres().start()
    work = Path(tempfile.mkdtemp(prefix="lb-dbrestore-bench."))
    try:
        env_pg = dict(os.environ, PGPASSWORD=srv.password)

        def psql(sql, db="postgres"):
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                            "-p", str(srv.port), "-U", "postgres", "-d", db],
                           input=sql, text=True, check=True, env=env_pg,
                           stdout=subprocess.DEVNULL)

        psql("CREATE DATABASE bench")
        rows = a.mb * 1024  # ~1 KiB per row
        psql("CREATE EXTENSION pgcrypto; CREATE TABLE t (id int, blob bytea, note text); "
             f"INSERT INTO t SELECT g, gen_random_bytes(512), repeat(md5(g::text), 8) "
             f"FROM generate_series(1, {rows}) g;", db="bench")
        shim = work / "bin"
        shim.mkdir()
        calls = work / "decrypts"
        real = shutil.which("gpg")
        (shim / "gpg").write_text(
            "#!/bin/sh\n"
            f'for a in "$@"; do case "$a" in --decrypt|-d) echo x >> "{calls}";; esac; done\n'
            f'exec "{real}" "$@"\n')
        os.chmod(shim / "gpg", 0o755)
        key = work / "key"
        key.write_text("bench passphrase, not a secret\n")
        uri = (f"postgresql://postgres:{urllib.parse.quote(srv.password, safe='')}@127.0.0.1:"
               f"{srv.port}/bench")
        env = {"PATH": f"{shim}:{os.environ['PATH']}", "BACKUP_NAME": "bench",
               "BACKUP_LOCAL_PATH": str(work / "store"), "BACKUP_ENCRYPTION_KEY_FILE": str(key),
               "BACKUP_POSTGRES": uri, "BACKUP_STATE_DIR": str(work / "state"),
               "BACKUP_LOG_FILE": str(work / "log"), "HOME": str(work)}
        (work / "store").mkdir()
        p = subprocess.run([a.bin, "backup"], env=env, capture_output=True, text=True)
        if p.returncode:
            sys.exit(f"backup failed: {p.stderr}")
        out = p.stdout
        ts = out.split()[-1]
        archive = next((work / "store" / "bench").glob("bench-*"))
        print(f"database {a.mb} MiB of rows, archive {archive.stat().st_size / 2**20:.0f} MiB,"
              f" load {os.getloadavg()[0]:.1f}")
        sides = {"this": a.bin, "other": a.compare_bin}
        times = {k: [] for k in sides}
        decrypts = {}
        for _ in range(a.repeat):
            for name, binary in sides.items():
                calls.unlink(missing_ok=True)
                t0 = time.monotonic()
                subprocess.run([binary, "restore", ts, "--yes"], env=env, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times[name].append(time.monotonic() - t0)
                decrypts[name] = len(calls.read_text().splitlines())
        for name in sides:
            t = times[name]
            print(f"{name:6s} {sides[name]}: median {statistics.median(t):6.2f} s "
                  f"(min {min(t):.2f}, max {max(t):.2f}), decrypts the archive "
                  f"{decrypts[name]}x")
        ratio = statistics.median(times["other"]) / statistics.median(times["this"])
        print(f"speed this/other: {ratio:.2f}x  (load {os.getloadavg()[0]:.1f})")
    finally:
        srv.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
