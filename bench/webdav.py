#!/usr/bin/env python3
"""WebDAV upload speed of Lifeboat against ``curl -T`` of the same finished archive.

Starts the test suite's Apache (mod_dav, basic auth, loopback; tests/lbservers.py), makes a
source of ``--size`` GiB of random bytes (incompressible), and in the same run, alternated
``--repeat`` times (the fastest of each kept):

  * ``lifeboat``  ``lifeboat backup`` with only ``BACKUP_WEBDAV_URL`` as store,
    ``BACKUP_COMPRESSION=none`` and ``BACKUP_ENCRYPTION=none``: reading the files, the tar
    stream, the chunked PUT to a temporary, the size check and the MOVE;
  * ``curl -T``   ``curl -T ARCHIVE`` of the archive that run stored, to another name
    on the same server: the upload alone, from a finished file of a known length.

and prints MB/s (archive bytes / 10^6 / wall seconds) and the ratio lifeboat / curl
(the goal: at least 0.8).

    python3 bench/webdav.py --size 1          # 1 GiB, about a minute on 2 cores
"""

import argparse
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=float, default=1.0, help="GiB of source data")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--lifeboat", default=str(HERE.parent / "build" / "lifeboat"))
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lb-bench-dav."))
    srv = lbservers.Apache()
    srv.start()
    try:
        src = work / "src"
        src.mkdir()
        left = int(a.size * (1 << 30))
        with open(src / "random.bin", "wb") as f:
            while left:
                n = min(left, 16 << 20)
                f.write(os.urandom(n))
                left -= n
        (srv.dav / "b").mkdir()
        shutil.chown(srv.dav / "b", srv.dav.stat().st_uid, srv.dav.stat().st_gid)
        env = {"PATH": os.environ["PATH"], "HOME": str(work), "BACKUP_NAME": "bench",
               "BACKUP_DIRS": f"{src}:data", "BACKUP_ENCRYPTION": "none",
               "BACKUP_COMPRESSION": "none", "BACKUP_STATE_DIR": str(work / "state"),
               "BACKUP_LOG_FILE": str(work / "log"), "BACKUP_WEBDAV_URL": f"{srv.url}/b",
               "BACKUP_WEBDAV_USER": srv.user, "BACKUP_WEBDAV_PASSWORD": srv.password}
        # curl's credentials from a config file (-K), not argv
        curlrc = work / "curlrc"
        curlrc.write_text(f'user = "{srv.user}:{srv.password}"\n')
        os.chmod(curlrc, 0o600)
        best = {"lifeboat": None, "curl -T": None}
        size = 0
        for i in range(a.repeat):
            t = time.monotonic()
            p = subprocess.run([a.lifeboat, "backup"], env=env, capture_output=True, text=True)
            lb_s = time.monotonic() - t
            if p.returncode != 0:
                sys.exit("lifeboat backup failed:\n" + p.stderr[-2000:])
            ts = p.stdout.strip()
            archive = srv.dav / "b" / "bench" / f"bench-{ts}.tar"
            size = archive.stat().st_size
            # the finished archive, copied out of the server's tree first (page cache warm)
            local = work / "archive.tar"
            shutil.copyfile(archive, local)
            t = time.monotonic()
            c = subprocess.run(["curl", "-sS", "--fail", "-K", str(curlrc), "-T",
                                str(local), f"{srv.url}/b/curl-{i}.tar"], capture_output=True,
                               text=True)
            curl_s = time.monotonic() - t
            if c.returncode != 0:
                sys.exit("curl -T failed: " + c.stderr)
            for k, v in (("lifeboat", lb_s), ("curl -T", curl_s)):
                best[k] = v if best[k] is None else min(best[k], v)
            archive.unlink()
            (srv.dav / "b" / f"curl-{i}.tar").unlink()
            local.unlink()
        print(f"archive {size / 1e6:.0f} MB, best of {a.repeat}, alternated")
        print(f"{'tool':<10} {'seconds':>8} {'MB/s':>8}")
        for k, v in best.items():
            print(f"{k:<10} {v:8.2f} {size / 1e6 / v:8.1f}")
        print(f"ratio lifeboat / curl -T: {best['curl -T'] / best['lifeboat']:.2f} (goal >= 0.8)")
    finally:
        srv.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
