#!/usr/bin/env python3
"""Downtime of a backup to local + a slow S3, BACKUP_UPLOAD=stream against after-local.

The dataset is backup-rss.py's (1000 small files, then 64 MiB files alternating random
bytes and text; 1 GiB by default). The S3 store is a MinIO of the test suite's
(tests/lbservers.py, started here on loopback) reached through a small throttling TCP
proxy in this script: every byte towards MinIO waits its turn on one token bucket shared
by all connections (20 MB/s by default, 10^6 bytes), so the parts uploaded in parallel
share the link as they would share a real uplink. (`tc` on the loopback would slow every
other program on the machine: not used.)

Downtime is what the stopped containers see: BACKUP_PRE_COMMANDS touches one file right
before the containers would be stopped and BACKUP_POST_COMMANDS another right after they
would be started again (the same hooks, services.c's stop and restart sit between them),
and the downtime is the difference of the two mtimes. The run's wall time (until every
store has the archive) is reported too.

Rounds alternate the modes (stream, after-local, then after-local, stream, ...) so a drift
in the machine's load falls on both alike; the table gives each mode's median and spread
and the per-round ratio after-local / stream, with the load average before and after.

    python3 bench/downtime.py                      # 1 GiB, 20 MB/s, 5 rounds
    python3 bench/downtime.py --size 0.25 --rounds 3 --rate 20
"""

import argparse
import importlib.util
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("backup_rss", HERE / "backup-rss.py")
brss = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(brss)
sys.path.insert(0, str(HERE.parent / "tests"))
import lbservers  # noqa: E402


class Throttle:
    """A TCP proxy from a loopback port to `target`, uploads paced at `rate` bytes/s."""

    def __init__(self, target, rate):
        self.target = target
        self.rate = float(rate)
        self.next = time.monotonic()
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _wait_turn(self, n):
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + n / self.rate
        if start > now:
            time.sleep(start - now)

    def _pump(self, src, dst, paced):
        try:
            while True:
                buf = src.recv(64 * 1024)
                if not buf:
                    break
                if paced:
                    self._wait_turn(len(buf))
                dst.sendall(buf)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(self.target)
            for s in (c, u):
                # Small buffers, so the pacing is not hidden by megabytes in flight.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def close(self):
        self.closing = True
        self.sock.close()


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def run_backup(binary, mode, data, work, keyfile, s3, comp):
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir()
    tmp = work / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    pre, post = work / "stopped", work / "started"
    for p in (pre, post):
        if p.exists():
            p.unlink()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "TMPDIR": str(tmp), "TZ": "UTC",
           "BACKUP_NAME": "bench", "BACKUP_LOCAL_PATH": str(store),
           "BACKUP_ENCRYPTION_KEY_FILE": str(keyfile), "BACKUP_DIRS": f"{data}:data",
           "BACKUP_STATE_DIR": str(work / "state"), "BACKUP_LOG_FILE": "/dev/null",
           "BACKUP_COMPRESSION": comp, "BACKUP_UPLOAD": mode,
           "BACKUP_PRE_COMMANDS": f": touch {pre}", "BACKUP_POST_COMMANDS": f": touch {post}",
           "BACKUP_S3_BUCKET": s3["bucket"], "BACKUP_S3_ENDPOINT": s3["endpoint"],
           "BACKUP_S3_ACCESS_KEY": s3["access"], "BACKUP_S3_SECRET_KEY": s3["secret"]}
    t0 = time.monotonic()
    p = subprocess.run([binary, "backup"], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"lifeboat backup ({mode}) failed, exit {p.returncode}:\n"
                 f"{p.stderr.decode(errors='replace')[-3000:]}")
    archive = next(store.rglob("*.gpg"))
    size = archive.stat().st_size
    down = (post.stat().st_mtime_ns - pre.stat().st_mtime_ns) / 1e9
    brss.s3_cleanup(s3, "bench/")
    return {"mode": mode, "down": down, "wall": wall, "size": size}


def spread(v):
    return f"{min(v):.1f}–{max(v):.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=float, default=1.0, help="dataset size in GiB")
    ap.add_argument("--rate", type=float, default=20.0, help="upload MB/s (10^6 bytes)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--compression", default="gzip")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(),
                                                  "lifeboat-bench-downtime"))
    ap.add_argument("--bin", default=os.environ.get("LIFEBOAT_BIN",
                                                    str(brss.REPO / "build" / "lifeboat")))
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args()

    binary = os.path.abspath(args.bin)
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    if brss.generate(data, int(args.size * brss.GiB), args.seed):
        print(f"generated {args.size} GiB in {data}", file=sys.stderr)
    keyfile = work / "key"
    keyfile.write_text(brss.PASSPHRASE + "\n")
    os.chmod(keyfile, 0o600)

    minio = lbservers.Minio()
    minio.start()
    proxy = Throttle(("127.0.0.1", minio.port), args.rate * 1e6)
    s3 = {"endpoint": f"http://127.0.0.1:{proxy.port}", "bucket": "lifeboat-bench",
          "access": minio.access_key, "secret": minio.secret_key}
    rows = []
    try:
        brss.s3_prepare(s3)
        load_before = loadavg()
        for r in range(args.rounds):
            order = ["stream", "after-local"] if r % 2 == 0 else ["after-local", "stream"]
            for mode in order:
                res = run_backup(binary, mode, data, work, keyfile, s3, args.compression)
                res["round"] = r + 1
                rows.append(res)
                print(f"round {r + 1} {mode:<11} downtime {res['down']:6.1f} s  "
                      f"run {res['wall']:6.1f} s  archive {res['size'] / 1e6:.0f} MB  "
                      f"load {loadavg()}", file=sys.stderr)
        load_after = loadavg()
    finally:
        proxy.close()
        minio.stop()
        shutil.rmtree(minio.workdir, ignore_errors=True)

    by = {m: [x for x in rows if x["mode"] == m] for m in ("stream", "after-local")}
    ratios = [a["down"] / s["down"] for s, a in zip(by["stream"], by["after-local"])]
    print(f"\n{args.size:g} GiB, {args.compression}, local + MinIO through a "
          f"{args.rate:g} MB/s proxy, {args.rounds} rounds alternated; load average "
          f"{load_before} before, {load_after} after\n")
    print("| mode | downtime median (s) | spread | run median (s) | spread | archive |")
    print("|---|---|---|---|---|---|")
    for m, v in by.items():
        d, w = [x["down"] for x in v], [x["wall"] for x in v]
        print(f"| `{m}` | {statistics.median(d):.1f} | {spread(d)} | "
              f"{statistics.median(w):.1f} | {spread(w)} | {v[0]['size'] / 1e6:.0f} MB |")
    print(f"\ndowntime after-local / stream, per round: "
          f"{', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
