#!/usr/bin/env python3
"""Throughput and peak-memory benchmark of `lifeboat backup`.

For every dataset size (GiB, ``--sizes 1,4`` by default) this generates a
deterministic dataset (seeded: incompressible random bytes, compressible
text, and 1000 small files), then, in the same run and on the same data,
times

  * ``lifeboat backup`` (gpg encryption, key from a file), and
  * the baseline ``tar czf - DIR | gpg --batch --symmetric --cipher-algo AES256
    -z 0 --passphrase-file F``,

and prints a table with seconds, MB/s and peak RSS.  Peak RSS comes from
``os.wait4`` (``ru_maxrss``) of the lifeboat process; on Linux that figure
also covers the descendants it waited for (e.g. a gpg child).  For the
baseline it is the max over the pipeline's processes (tar's figure includes
its gzip child).  Finally it prints the ratio lifeboat/baseline per size and
the RSS growth between the largest and the smallest size (4 GiB / 1 GiB by
default): streaming should keep that close to 1.

With ``--s3`` it also runs ``lifeboat backup`` to the local directory *and*
an S3 bucket at once (endpoint, bucket and keys from ``--s3-endpoint`` etc. or
LB_S3_ENDPOINT / LB_S3_BUCKET / LB_S3_ACCESS_KEY / LB_S3_SECRET_KEY), reported
as "lifeboat+s3" next to the local-only run on the same data.  The bucket is
created with boto3 when it is missing, and each uploaded object is deleted
after its run.

Quick check:  python3 bench/backup-rss.py --sizes 0.25,1
"""

import argparse
import ctypes
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GiB = 1 << 30
MiB = 1 << 20
BIG_FILE = 64 * MiB
SMALL_FILES = 1000
PASSPHRASE = "lifeboat-bench-passphrase"
PR_SET_CHILD_SUBREAPER = 36
TOOLS = ("lifeboat", "baseline")
TOOLS_S3 = ("lifeboat", "lifeboat+s3", "baseline")


# --------------------------------------------------------------------------
# dataset
# --------------------------------------------------------------------------

def text_pool(rng, size=8 * MiB):
    """Pseudo-English text (compresses about 3:1 with gzip)."""
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [12, 9, 8, 8, 7, 7, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]
    vocab = ["".join(rng.choices(letters, weights, k=rng.randint(1, 10))) for _ in range(3000)]
    words = rng.choices(vocab, k=size // 5)
    out = bytearray()
    line = []
    for i, w in enumerate(words):
        line.append(w)
        if len(line) >= 12 or i == len(words) - 1:
            out += (" ".join(line) + ".\n").encode()
            line = []
    return bytes(out[:size])


def text_bytes(rng, pool, n):
    out = bytearray()
    while len(out) < n:
        ln = rng.randint(4096, 65536)
        off = rng.randrange(0, len(pool) - ln)
        out += pool[off:off + ln]
    return bytes(out[:n])


def generate(root, size, seed):
    """Write a dataset of `size` bytes below root (deterministic for (size, seed))."""
    stamp = root / ".bench-complete"
    params = {"size": size, "seed": seed, "version": 1}
    if stamp.exists():
        try:
            if json.loads(stamp.read_text()) == params:
                return False  # reuse
        except ValueError:
            pass
    if root.exists():
        shutil.rmtree(root)
    rng = random.Random(f"{seed}:{size}")
    pool = text_pool(rng)
    written = 0
    # 1000 small files, half text, half random
    for i in range(SMALL_FILES):
        d = root / "small" / f"d{i // 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        n = rng.randint(256, 16384)
        if i % 2:
            (d / f"f{i:04d}.bin").write_bytes(rng.randbytes(n))
        else:
            (d / f"f{i:04d}.txt").write_bytes(text_bytes(rng, pool, n))
        written += n
    # the rest: alternating 64 MiB random and text files (about half/half)
    (root / "big").mkdir(parents=True, exist_ok=True)
    i = 0
    while written < size:
        n = min(BIG_FILE, size - written)
        if i % 2 == 0:
            path = root / "big" / f"random-{i:04d}.bin"
            data = rng.randbytes(n)
        else:
            path = root / "big" / f"text-{i:04d}.txt"
            data = text_bytes(rng, pool, n)
        path.write_bytes(data)
        written += n
        i += 1
    stamp.write_text(json.dumps(params))
    return True


def dataset_bytes(root):
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for n in filenames:
            if n != ".bench-complete":
                total += os.lstat(os.path.join(dirpath, n)).st_size
    return total


# --------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------

def become_subreaper():
    """Make orphaned descendants our children, so we can wait4() them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def spawn(script, args=()):
    """Start processes from a small /bin/sh and return their pids.

    A forked child starts with its parent's resident pages, and Linux keeps
    that figure in ru_maxrss across exec.  Forking from this (large) Python
    process would put a floor of its RSS under every measurement, so
    /bin/sh starts the measured processes in the background, prints their
    pids and exits; as a subreaper we inherit them and wait4() them
    ourselves.  The remaining floor is the shell's RSS (see "spawn floor").
    """
    p = subprocess.run(["/bin/sh", "-c", script, "sh", *args], stdout=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, check=True,
                       env={"PATH": os.environ["PATH"]})
    return [int(x) for x in p.stdout.split()]


def wait_pid(pid):
    """(exit code, peak RSS in bytes) of a child or inherited orphan."""
    _, status, ru = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), ru.ru_maxrss * 1024  # Linux: KiB


def spawn_floor():
    (pid,) = spawn('/bin/true & echo $!')
    return wait_pid(pid)[1]


def drop_caches():
    subprocess.run(["sync"])
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:
        print(f"warning: cannot drop caches: {e}", file=sys.stderr)


def s3_client(s3):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=s3["endpoint"], aws_access_key_id=s3["access"],
                        aws_secret_access_key=s3["secret"], region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


def s3_prepare(s3):
    c = s3_client(s3)
    try:
        c.head_bucket(Bucket=s3["bucket"])
    except Exception:
        c.create_bucket(Bucket=s3["bucket"])


def s3_cleanup(s3, prefix):
    c = s3_client(s3)
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=s3["bucket"], Prefix=prefix):
        for o in page.get("Contents", []):
            c.delete_object(Bucket=s3["bucket"], Key=o["Key"])


def run_lifeboat(binary, data, work, keyfile, s3=None):
    store = work / "store-lifeboat"
    home = Path(tempfile.mkdtemp(prefix="lbb", dir="/tmp"))
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "TZ": "UTC",
        "BACKUP_NAME": "bench",
        "BACKUP_LOCAL_PATH": str(store),
        "BACKUP_ENCRYPTION_KEY_FILE": str(keyfile),
        "BACKUP_DIRS": f"{data}:data",
    }
    if s3:
        env.update(BACKUP_S3_BUCKET=s3["bucket"], BACKUP_S3_ENDPOINT=s3["endpoint"],
                   BACKUP_S3_ACCESS_KEY=s3["access"], BACKUP_S3_SECRET_KEY=s3["secret"])
        if s3.get("part_size"):
            env["BACKUP_S3_PART_SIZE"] = s3["part_size"]
    errlog = work / "lifeboat.stderr"
    t0 = time.monotonic()
    (pid,) = spawn('e=$1; shift; env -i "$@" >/dev/null 2>"$e" </dev/null & echo $!',
                   [str(errlog)] + [f"{k}={v}" for k, v in env.items()] + [binary, "backup"])
    rc, rss = wait_pid(pid)
    secs = time.monotonic() - t0
    out_size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    ok = rc == 0
    if not ok:
        tail = errlog.read_text(errors="replace")[-2000:]
        print(f"lifeboat backup failed (exit {rc}):\n{tail}", file=sys.stderr)
    gnupg = home / ".gnupg"
    if gnupg.exists():
        subprocess.run(["gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent"],
                       stderr=subprocess.DEVNULL)
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(store, ignore_errors=True)
    if s3:
        s3_cleanup(s3, "bench/")
    return {"ok": ok, "secs": secs, "rss": rss, "out": out_size}


def run_baseline(data, work, keyfile):
    out = work / "baseline.tar.gz.gpg"
    out.unlink(missing_ok=True)
    gpghome = tempfile.mkdtemp(prefix="g", dir="/tmp")
    os.chmod(gpghome, 0o700)
    fifo = work / "baseline.fifo"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o600)
    script = (
        'tar czf - -C "$1" "$2" >"$6" </dev/null & echo $!\n'
        'gpg --homedir "$3" --batch --pinentry-mode loopback --symmetric '
        '--cipher-algo AES256 -z 0 --passphrase-file "$4" -o "$5" --yes '
        '<"$6" >/dev/null 2>/dev/null & echo $!\n')
    t0 = time.monotonic()
    pids = spawn(script, [str(data.parent), data.name, gpghome, str(keyfile), str(out),
                          str(fifo)])
    tar_pid, gpg_pid = pids
    rc_tar, rss_tar = wait_pid(tar_pid)
    rc_gpg, rss_gpg = wait_pid(gpg_pid)
    secs = time.monotonic() - t0
    ok = rc_tar == 0 and rc_gpg == 0
    if not ok:
        print(f"baseline failed (tar {rc_tar}, gpg {rc_gpg})", file=sys.stderr)
    out_size = out.stat().st_size if out.exists() else 0
    fifo.unlink(missing_ok=True)
    subprocess.run(["gpgconf", "--homedir", gpghome, "--kill", "gpg-agent"],
                   stderr=subprocess.DEVNULL)
    shutil.rmtree(gpghome, ignore_errors=True)
    out.unlink(missing_ok=True)
    return {"ok": ok, "secs": secs, "rss": max(rss_tar, rss_gpg), "out": out_size}


# --------------------------------------------------------------------------

def fmt_size(gib):
    return f"{gib:g} GiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,4", help="dataset sizes in GiB, comma separated")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "lifeboat-bench"),
                    help="scratch directory for datasets and outputs")
    ap.add_argument("--bin", default=os.environ.get("LIFEBOAT_BIN",
                                                    str(REPO / "build" / "lifeboat")))
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--keep", action="store_true",
                    help="keep the generated datasets (reused by later runs)")
    ap.add_argument("--drop-caches", action="store_true",
                    help="sync and drop the page cache before every run (root)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--s3", action="store_true",
                    help="also back up to local + S3 at once (see --s3-*)")
    ap.add_argument("--s3-endpoint", default=os.environ.get("LB_S3_ENDPOINT"))
    ap.add_argument("--s3-bucket", default=os.environ.get("LB_S3_BUCKET", "lifeboat-bench"))
    ap.add_argument("--s3-access-key", default=os.environ.get("LB_S3_ACCESS_KEY"))
    ap.add_argument("--s3-secret-key", default=os.environ.get("LB_S3_SECRET_KEY"))
    ap.add_argument("--s3-part-size", help="BACKUP_S3_PART_SIZE (default: lifeboat's)")
    args = ap.parse_args()
    s3 = None
    if args.s3:
        if not (args.s3_endpoint and args.s3_access_key and args.s3_secret_key):
            ap.error("--s3 needs an endpoint and keys (--s3-endpoint/--s3-access-key/"
                     "--s3-secret-key or LB_S3_*)")
        s3 = {"endpoint": args.s3_endpoint, "bucket": args.s3_bucket,
              "access": args.s3_access_key, "secret": args.s3_secret_key,
              "part_size": args.s3_part_size}
        s3_prepare(s3)

    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes:
        ap.error("--sizes is empty")
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        sys.exit(f"lifeboat binary not found: {binary}")
    for tool in ("tar", "gpg", "gzip"):
        if not shutil.which(tool):
            sys.exit(f"required tool missing: {tool}")

    if not become_subreaper():
        sys.exit("cannot become a child subreaper (Linux prctl needed) to measure RSS")
    floor = spawn_floor()

    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    keyfile = work / "key"
    keyfile.write_text(PASSPHRASE + "\n")
    os.chmod(keyfile, 0o600)

    results = []
    for gib in sizes:
        size = int(gib * GiB)
        data = work / f"data-{gib:g}g"
        t0 = time.monotonic()
        made = generate(data, size, args.seed)
        nbytes = dataset_bytes(data)
        print(f"[{fmt_size(gib)}] dataset {'generated' if made else 'reused'} "
              f"({nbytes / 1e6:.0f} MB) in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        for tool in TOOLS_S3 if s3 else TOOLS:
            if args.drop_caches:
                drop_caches()
            print(f"[{fmt_size(gib)}] running {tool} ...", file=sys.stderr)
            if tool == "lifeboat":
                r = run_lifeboat(binary, data, work, keyfile)
            elif tool == "lifeboat+s3":
                r = run_lifeboat(binary, data, work, keyfile, s3)
            else:
                r = run_baseline(data, work, keyfile)
            r.update(size_gib=gib, tool=tool, bytes=nbytes)
            results.append(r)
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)

    # ---- table ---------------------------------------------------------
    by = {(r["size_gib"], r["tool"]): r for r in results}
    hdr = f"{'size':>9} {'tool':<11} {'seconds':>8} {'MB/s':>8} {'peak RSS':>10} {'out MB':>8} " \
          f"{'time lb/base':>12} {'RSS lb/base':>11}"
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        mbs = f'{r["bytes"] / 1e6 / r["secs"]:.1f}' if r["ok"] and r["secs"] > 0 else "-"
        tr = rr = ""
        if r["tool"].startswith("lifeboat") and r["ok"]:
            b = by.get((r["size_gib"], "baseline"))
            if b and b["secs"] > 0 and b["rss"] > 0:
                tr = f"{r['secs'] / b['secs']:.2f}"
                rr = f"{r['rss'] / b['rss']:.2f}"
        status = "" if r["ok"] else "  FAILED"
        print(f"{fmt_size(r['size_gib']):>9} {r['tool']:<11} {r['secs']:>8.1f} {mbs:>8} "
              f"{r['rss'] / MiB:>8.1f}Mi {r['out'] / 1e6:>8.1f} {tr:>12} {rr:>11}{status}")
    if len(sizes) >= 2:
        lo, hi = min(sizes), max(sizes)
        print()
        for tool in TOOLS_S3 if s3 else TOOLS:
            a, b = by.get((lo, tool)), by.get((hi, tool))
            if a and b and a["ok"] and b["ok"] and a["rss"] > 0:
                print(f"peak RSS ratio {fmt_size(hi)} / {fmt_size(lo)} ({tool}): "
                      f"{b['rss'] / a['rss']:.2f}")
    print(f"\nspawn floor (peak RSS of /bin/true started the same way): {floor / MiB:.1f}Mi")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
