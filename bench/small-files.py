#!/usr/bin/env python3
"""Archive size of many small files: `lifeboat backup` (gzip, no encryption) vs `tar czf`.

    python3 bench/small-files.py [--files 20000] [--size 2048] [--bin build/lifeboat]
    python3 bench/small-files.py --bin OLD --bin NEW     # before/after, same data

The data is deterministic: N files of SIZE bytes of pseudo-English text (seeded), 100 per
directory, with fixed mtimes that have a sub-second part (as files written by a program do;
--whole-seconds: without one).
Prints each archive's size and its ratio to `tar czf`'s.
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("the of and to in is was for on that with as by at from this be are or an it not "
         "which have has but were all their one more also can new other its time first "
         "backup volume archive restore file data server config value error table").split()


def generate(root, files, size, whole):
    rnd = random.Random(18)
    for i in range(files):
        d = root / f"d{i // 100:04d}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        out = []
        n = 0
        while n < size:
            w = rnd.choice(WORDS) + (" " if rnd.random() > 0.08 else "\n")
            out.append(w)
            n += len(w)
        p = d / f"file-{i:06d}.txt"
        p.write_bytes("".join(out).encode()[:size])
        t = 1_700_000_000_000_000_000 + i * (1_000_000_000 if whole else 1_000_123_457)
        os.utime(p, ns=(t, t))


def lb_size(binary, data, work):
    store = work / "store"
    store.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(work), "TMPDIR": str(work), "TZ": "UTC",
           "BACKUP_NAME": "small", "BACKUP_LOCAL_PATH": str(store), "BACKUP_ENCRYPTION": "none",
           "BACKUP_COMPRESSION": "gzip", "BACKUP_DIRS": f"{data}:data",
           "BACKUP_STATE_DIR": str(work / "state"), "BACKUP_LOG_FILE": "/dev/null"}
    t0 = time.monotonic()
    subprocess.run([binary, "backup"], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    secs = time.monotonic() - t0
    arch = [p for p in (store / "small").iterdir() if p.name.endswith(".tar.gz")]
    assert len(arch) == 1, arch
    return arch[0].stat().st_size, secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--bin", action="append")
    ap.add_argument("--whole-seconds", action="store_true",
                    help="mtimes without a sub-second part (as after `touch -d @N`)")
    args = ap.parse_args()
    bins = args.bin or [os.environ.get("LIFEBOAT_BIN", "build/lifeboat")]
    with tempfile.TemporaryDirectory(prefix="lb-small-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        generate(data, args.files, args.size, args.whole_seconds)
        tgz = tmp / "tar.tar.gz"
        t0 = time.monotonic()
        subprocess.run(["tar", "czf", str(tgz), "-C", str(data), "."], check=True)
        tsecs = time.monotonic() - t0
        tsize = tgz.stat().st_size
        print(f"{args.files} x {args.size} B; tar czf: {tsize} bytes, {tsecs:.2f} s", flush=True)
        for i, b in enumerate(bins):
            work = tmp / f"lb{i}"
            work.mkdir()
            size, secs = lb_size(b, data, work)
            print(f"{b}: {size} bytes, {secs:.2f} s, {size / tsize:.3f}x tar czf "
                  f"({(size / tsize - 1) * 100:+.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
