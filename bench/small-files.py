#!/usr/bin/env python3
"""Many small files (issue 18): archive size against `tar czf`, backup speed against offen.

    python3 bench/small-files.py [--files 100000] [--size 2048] [--bin build/lifeboat]
    python3 bench/small-files.py --bin OLD --bin NEW     # before/after, same data
    python3 bench/small-files.py --offen /tmp/offen/backup --rounds 5

The data is deterministic: N files of SIZE bytes, 100 per directory, with fixed mtimes
that have a sub-second part (as files written by a program do; --whole-seconds: without
one). --content text (default): seeded pseudo-English text; mixed: every other file is
random bytes instead (incompressible).

Size: each --bin once with BACKUP_ENCRYPTION=none and BACKUP_COMPRESSION=gzip, against
`tar czf` of the same tree (the sizes do not depend on the run, so once is enough).
Speed (with --offen): `lifeboat backup` (gzip, the passphrase in BACKUP_ENCRYPTION_KEY_FILE)
and offen/docker-volume-backup (BACKUP_SOURCES, gzip, GPG_PASSPHRASE) alternated for
--rounds rounds (odd rounds in reverse order), each run in a fresh directory; printed: every
run's seconds, each lifeboat binary's median speed ratio to offen (offen's seconds / its
seconds, per round) with the spread (min-max of the per-round ratios), and the load average.
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("the of and to in is was for on that with as by at from this be are or an it not "
         "which have has but were all their one more also can new other its time first "
         "backup volume archive restore file data server config value error table").split()
PASS = "bench-passphrase-18"


def generate(root, files, size, whole, content):
    rnd = random.Random(18)
    for i in range(files):
        d = root / f"d{i // 100:04d}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        p = d / f"file-{i:06d}.txt"
        if content == "mixed" and i % 2:
            p.write_bytes(rnd.randbytes(size))
        else:
            out = []
            n = 0
            while n < size:
                w = rnd.choice(WORDS) + (" " if rnd.random() > 0.08 else "\n")
                out.append(w)
                n += len(w)
            p.write_bytes("".join(out).encode()[:size])
        t = 1_700_000_000_000_000_000 + i * (1_000_000_000 if whole else 1_000_123_457)
        os.utime(p, ns=(t, t))


def fresh(p):
    shutil.rmtree(p, ignore_errors=True)
    p.mkdir(parents=True)


def run_lb(binary, data, work, encrypt):
    fresh(work)
    store = work / "store"
    store.mkdir()
    (work / "tmp").mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(work), "TMPDIR": str(work / "tmp"),
           "TZ": "UTC", "BACKUP_NAME": "small", "BACKUP_LOCAL_PATH": str(store),
           "BACKUP_COMPRESSION": "gzip", "BACKUP_DIRS": f"{data}:data",
           "BACKUP_STATE_DIR": str(work / "state"), "BACKUP_LOG_FILE": "/dev/null"}
    if encrypt:
        (work / "key").write_text(PASS + "\n")
        env["BACKUP_ENCRYPTION_KEY_FILE"] = str(work / "key")
    else:
        env["BACKUP_ENCRYPTION"] = "none"
    t0 = time.monotonic()
    subprocess.run([binary, "backup"], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    secs = time.monotonic() - t0
    arch = [p for p in (store / "small").iterdir()
            if p.name.endswith(".tar.gz.gpg" if encrypt else ".tar.gz")]
    assert len(arch) == 1, arch
    size = arch[0].stat().st_size
    shutil.rmtree(work, ignore_errors=True)
    return size, secs


def run_offen(binary, data, work):
    fresh(work)
    (work / "archive").mkdir()
    (work / "tmp").mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(work), "TMPDIR": str(work / "tmp"),
           "TZ": "UTC", "BACKUP_SOURCES": str(data), "BACKUP_ARCHIVE": str(work / "archive"),
           "BACKUP_FILENAME": "small-%Y-%m-%dT%H-%M-%S.tar.gz", "GPG_PASSPHRASE": PASS}
    t0 = time.monotonic()
    r = subprocess.run([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    secs = time.monotonic() - t0
    files = list((work / "archive").iterdir())
    if r.returncode or len(files) != 1:
        sys.exit("offen failed:\n" + r.stdout.decode(errors="replace")[-3000:])
    size = files[0].stat().st_size
    shutil.rmtree(work, ignore_errors=True)
    return size, secs


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--bin", action="append")
    ap.add_argument("--content", choices=("text", "mixed"), default="text")
    ap.add_argument("--whole-seconds", action="store_true",
                    help="mtimes without a sub-second part (as after `touch -d @N`)")
    ap.add_argument("--offen", help="offen/docker-volume-backup's `backup` binary")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dir", default=None, help="scratch directory (default: TMPDIR)")
    args = ap.parse_args()
    bins = args.bin or [os.environ.get("LIFEBOAT_BIN", "build/lifeboat")]
    with tempfile.TemporaryDirectory(prefix="lb-small-", dir=args.dir) as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        generate(data, args.files, args.size, args.whole_seconds, args.content)
        print(f"{args.files} x {args.size} B ({args.content}), load {load()}", flush=True)
        tgz = tmp / "tar.tar.gz"
        t0 = time.monotonic()
        subprocess.run(["tar", "czf", str(tgz), "-C", str(data), "."], check=True)
        tsecs = time.monotonic() - t0
        tsize = tgz.stat().st_size
        tgz.unlink()
        print(f"tar czf: {tsize} bytes, {tsecs:.2f} s", flush=True)
        for i, b in enumerate(bins):
            size, secs = run_lb(b, data, tmp / "w", False)
            print(f"{b}: {size} bytes, {secs:.2f} s, {size / tsize:.4f}x tar czf "
                  f"({(size / tsize - 1) * 100:+.2f}%)", flush=True)
        if not args.offen:
            return 0
        names = [f"lb{i}" for i in range(len(bins))] + ["offen"]
        secs = {n: [] for n in names}
        sizes = {}
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            for n in order:
                if n == "offen":
                    size, s = run_offen(args.offen, data, tmp / "w")
                else:
                    size, s = run_lb(bins[int(n[2:])], data, tmp / "w", True)
                secs[n].append(s)
                sizes[n] = size
                print(f"round {r + 1} {n}: {s:.2f} s, {size} bytes, load {load()}",
                      flush=True)
        print(f"offen: median {statistics.median(secs['offen']):.2f} s, "
              f"{sizes['offen']} bytes")
        for i, b in enumerate(bins):
            n = f"lb{i}"
            ratios = [o / s for o, s in zip(secs["offen"], secs[n])]
            print(f"{b}: median {statistics.median(secs[n]):.2f} s, {sizes[n]} bytes; speed / "
                  f"offen's: median {statistics.median(ratios):.2f}x, spread "
                  f"{min(ratios):.2f}-{max(ratios):.2f}x (per round: "
                  + ", ".join(f"{x:.2f}" for x in ratios) + ")")
        print(f"load average at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
