#!/usr/bin/env python3
"""SFTP upload speed of Lifeboat against `curl -T` and OpenSSH's `sftp put` of the same
finished archive, in the same run, to a loopback sshd (tests/lbservers.py's Sshd; needs
root, as the test server does).

The data is one file of random bytes (``--size`` GiB, default 1), backed up with
BACKUP_COMPRESSION=none and BACKUP_ENCRYPTION=none so the archive is as large as the data
and the run is the stream plus the upload. In each round, one after the other:

  * ``lb-sftp``   lifeboat backup to the SFTP store only (key authentication)
  * ``lb-local``  lifeboat backup to a local directory only (the stream's own cost)
  * ``curl-T``    ``curl -T ARCHIVE sftp://...`` of lifeboat's finished archive
  * ``sftp-put``  ``sftp -b`` with ``put ARCHIVE`` of the same archive

``--repeat N`` rounds, the fastest of each kept. Prints MB/s (archive bytes / 10^6 /
seconds) and lb-sftp's ratio to each baseline (goal: >= 0.8).

    python3 bench/sftp-upload.py                # 1 GiB, 2 rounds
    python3 bench/sftp-upload.py --size 0.25 --repeat 3 --json out.json
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
import lbservers  # noqa: E402

MiB = 1 << 20


def timed(argv, env=None, stdin=None):
    t = time.monotonic()
    p = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True)
    dt = time.monotonic() - t
    if p.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({p.returncode}): {p.stderr[-2000:]}")
    return dt, p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=float, default=1.0, help="GiB of data (default 1)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--bin", default=str(HERE.parent / "build" / "lifeboat"))
    ap.add_argument("--dir", default="/tmp/lifeboat-bench-sftp")
    ap.add_argument("--json")
    a = ap.parse_args()

    work = Path(a.dir)
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    (work / "store").mkdir()
    with open(work / "data" / "random.bin", "wb") as f:
        left = int(a.size * 1024 * MiB)
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n
    srv = lbservers.Sshd()
    srv.start()
    try:
        base = {"PATH": os.environ["PATH"], "HOME": str(work), "TZ": "UTC",
                "BACKUP_NAME": "bench", "BACKUP_ENCRYPTION": "none",
                "BACKUP_COMPRESSION": "none", "BACKUP_DIRS": f"{work}/data:data",
                "BACKUP_STATE_DIR": str(work / "state"), "BACKUP_LOG_FILE": str(work / "log")}
        sftp_env = {**base, "BACKUP_SFTP_URL": srv.url(),
                    "BACKUP_SFTP_IDENTITY_FILE": str(srv.key),
                    "BACKUP_SFTP_KNOWN_HOSTS": str(srv.known_hosts)}
        local_env = {**base, "BACKUP_LOCAL_PATH": str(work / "store")}
        best = {}
        size = 0
        for _ in range(a.repeat):
            for f in (srv.home / "bench").glob("*"):
                f.unlink()
            dt, _ = timed([a.bin, "backup"], sftp_env)
            best["lb-sftp"] = min(best.get("lb-sftp", dt), dt)
            for f in (work / "store" / "bench").glob("*"):
                f.unlink()
            dt, _ = timed([a.bin, "backup"], local_env)
            best["lb-local"] = min(best.get("lb-local", dt), dt)
            archive = next((work / "store" / "bench").glob("*.tar"))
            size = archive.stat().st_size
            dest = f"{srv.remote_home}/curl-copy.tar"
            dt, _ = timed(["curl", "-sS", "--hostpubsha256", srv.fingerprint[7:],
                           "-u", f"{srv.user}:", "--key", str(srv.key), "--pubkey", "",
                           "-T", str(archive), f"sftp://{srv.host}:{srv.port}{dest}"])
            best["curl-T"] = min(best.get("curl-T", dt), dt)
            dt, _ = timed(["sftp", "-q", "-b", "-", "-i", str(srv.key), "-P", str(srv.port),
                           "-o", f"UserKnownHostsFile={srv.known_hosts}",
                           "-o", "BatchMode=yes", f"{srv.user}@{srv.host}"],
                          stdin=f"put {archive} {srv.remote_home}/sftp-copy.tar\n")
            best["sftp-put"] = min(best.get("sftp-put", dt), dt)
            for n in ("curl-copy.tar", "sftp-copy.tar"):
                (srv.home / n).unlink(missing_ok=True)
    finally:
        srv.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    rows = {k: {"seconds": round(v, 2), "MBps": round(size / 1e6 / v, 1)} for k, v in best.items()}
    print(f"archive {size / MiB:.0f} MiB, best of {a.repeat}")
    print(f"{'tool':10} {'seconds':>8} {'MB/s':>8}")
    for k, r in rows.items():
        print(f"{k:10} {r['seconds']:8.2f} {r['MBps']:8.1f}")
    ratios = {f"lb-sftp/{k}": round(best[k] / best["lb-sftp"], 2) for k in ("curl-T", "sftp-put")}
    for k, v in ratios.items():
        print(f"{k:20} {v:.2f}  (goal >= 0.8)")
    if a.json:
        Path(a.json).write_text(json.dumps({"bytes": size, "rows": rows, "ratios": ratios},
                                           indent=2) + "\n")


if __name__ == "__main__":
    main()
