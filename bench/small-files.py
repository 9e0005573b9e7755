#!/usr/bin/env python3
"""Many small files (issue 18): archive size against `tar czf`, backup speed against offen.

    python3 bench/small-files.py [--files 100000] [--size 2048] [--bin build/lifeboat]
    python3 bench/small-files.py --bin OLD --bin NEW     # before/after, same data
    python3 bench/small-files.py --offen /tmp/offen/backup --rounds 5

The data is deterministic: N files of SIZE bytes, 100 per directory, with fixed mtimes
that have a sub-second part (as files written by a program do; --whole-seconds: without
one). --content text (default): seeded pseudo-English text from a 50-word vocabulary (each
file deflates to about 27% of its size, so the fixed cost of a file weighs much);
pool: each file a 2 KiB slice, at a seeded random offset, of the 8 MiB text pool of
backup-rss.py (and so of throughput.py's data set: a 3,000-word vocabulary of random
letters; `tar czf` stores about 890 B a file, near the issue's 108 MB for 100,000 files);
mixed: every other file is random bytes instead of text (incompressible).

Size: each --bin once with BACKUP_ENCRYPTION=none and BACKUP_COMPRESSION=gzip, against
`tar czf` of the same tree (the sizes do not depend on the run, so once is enough).
With --breakdown: where the bytes go, from each binary's uncompressed archive
(BACKUP_COMPRESSION=none): its tar headers, file data (with padding) and SHA256SUMS, each
deflated on its own by libdeflate (level 6, 1 MiB members, through ctypes) and by zlib
(level 6, one stream, as `tar czf`), in bytes per file.
Speed (with --offen): `lifeboat backup` (gzip, the passphrase in BACKUP_ENCRYPTION_KEY_FILE)
and offen/docker-volume-backup (BACKUP_SOURCES, gzip, GPG_PASSPHRASE) alternated for
--rounds rounds (odd rounds in reverse order), each run in a fresh directory; printed: every
run's seconds and CPU seconds (user + system of it and its children, gpg included: getrusage),
each lifeboat binary's median speed ratio to offen (offen's seconds / its
seconds, per round) with the spread (min-max of the per-round ratios), and the load average.
"""
import argparse
import importlib.util
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORDS = ("the of and to in is was for on that with as by at from this be are or an it not "
         "which have has but were all their one more also can new other its time first "
         "backup volume archive restore file data server config value error table").split()
PASS = "bench-passphrase-18"


def text_pool():
    """backup-rss.py's text pool (8 MiB), from its own generator and a fixed seed."""
    spec = importlib.util.spec_from_file_location("backup_rss", HERE / "backup-rss.py")
    brss = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(brss)
    return brss.text_pool(random.Random(18))


def generate(root, files, size, whole, content):
    rnd = random.Random(18)
    pool = text_pool() if content == "pool" else None
    for i in range(files):
        d = root / f"d{i // 100:04d}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        p = d / f"file-{i:06d}.txt"
        if content == "mixed" and i % 2:
            p.write_bytes(rnd.randbytes(size))
        elif pool:
            off = rnd.randrange(0, len(pool) - size)
            p.write_bytes(pool[off:off + size])
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


def breakdown(binary, data, work, files):
    """The uncompressed archive's parts, each deflated on its own: bytes per file."""
    import ctypes
    import tarfile
    import zlib
    ld = ctypes.CDLL("libdeflate.so.0")
    ld.libdeflate_alloc_compressor.restype = ctypes.c_void_p
    ld.libdeflate_gzip_compress.restype = ctypes.c_size_t
    ld.libdeflate_gzip_compress.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                            ctypes.c_char_p, ctypes.c_size_t]
    comp = ld.libdeflate_alloc_compressor(6)
    out = ctypes.create_string_buffer((1 << 20) + (1 << 17))

    def ldf(buf):
        return sum(ld.libdeflate_gzip_compress(comp, buf[i:i + (1 << 20)],
                                               len(buf[i:i + (1 << 20)]), out, len(out))
                   for i in range(0, len(buf), 1 << 20))

    def zl(buf):
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
        return len(c.compress(buf) + c.flush())

    tar = run_lb(binary, data, work, False, "none", keep=True)
    raw = tar.read_bytes()
    parts = {"headers": bytearray(), "data": bytearray(), "SHA256SUMS": bytearray()}
    with tarfile.open(tar) as t:
        for m in t:
            parts["headers"] += raw[m.offset:m.offset_data]
            end = m.offset_data + (m.size + 511) // 512 * 512
            if m.name == "SHA256SUMS":
                parts["SHA256SUMS"] += raw[m.offset_data:m.offset_data + m.size]
            elif m.isfile():
                parts["data"] += raw[m.offset_data:end]
    shutil.rmtree(work, ignore_errors=True)
    for name, buf in parts.items():
        buf = bytes(buf)
        a, b = ldf(buf), zl(buf)
        print(f"  {name}: {len(buf)} B raw; libdeflate-6 {a} B ({a / files:.1f} B a file), "
              f"zlib-6 {b} B ({b / files:.1f} B a file)", flush=True)


def children_cpu():
    """User + system CPU seconds of the waited-for children so far (gpg included)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_lb(binary, data, work, encrypt, compression="gzip", keep=False):
    fresh(work)
    store = work / "store"
    store.mkdir()
    (work / "tmp").mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(work), "TMPDIR": str(work / "tmp"),
           "TZ": "UTC", "BACKUP_NAME": "small", "BACKUP_LOCAL_PATH": str(store),
           "BACKUP_COMPRESSION": compression, "BACKUP_DIRS": f"{data}:data",
           "BACKUP_STATE_DIR": str(work / "state"), "BACKUP_LOG_FILE": "/dev/null"}
    if encrypt:
        (work / "key").write_text(PASS + "\n")
        env["BACKUP_ENCRYPTION_KEY_FILE"] = str(work / "key")
    else:
        env["BACKUP_ENCRYPTION"] = "none"
    t0, c0 = time.monotonic(), children_cpu()
    subprocess.run([binary, "backup"], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    secs, cpu = time.monotonic() - t0, children_cpu() - c0
    ext = ".tar" if compression == "none" else ".tar.gz"
    arch = [p for p in (store / "small").iterdir()
            if p.name.endswith(ext + ".gpg" if encrypt else ext)]
    assert len(arch) == 1, arch
    if keep:
        return arch[0]
    size = arch[0].stat().st_size
    shutil.rmtree(work, ignore_errors=True)
    return size, secs, cpu


def run_offen(binary, data, work):
    fresh(work)
    (work / "archive").mkdir()
    (work / "tmp").mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(work), "TMPDIR": str(work / "tmp"),
           "TZ": "UTC", "BACKUP_SOURCES": str(data), "BACKUP_ARCHIVE": str(work / "archive"),
           "BACKUP_FILENAME": "small-%Y-%m-%dT%H-%M-%S.tar.gz", "GPG_PASSPHRASE": PASS}
    t0, c0 = time.monotonic(), children_cpu()
    r = subprocess.run([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    secs, cpu = time.monotonic() - t0, children_cpu() - c0
    files = list((work / "archive").iterdir())
    if r.returncode or len(files) != 1:
        sys.exit("offen failed:\n" + r.stdout.decode(errors="replace")[-3000:])
    size = files[0].stat().st_size
    shutil.rmtree(work, ignore_errors=True)
    return size, secs, cpu


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--bin", action="append")
    ap.add_argument("--content", choices=("text", "pool", "mixed"), default="text")
    ap.add_argument("--whole-seconds", action="store_true",
                    help="mtimes without a sub-second part (as after `touch -d @N`)")
    ap.add_argument("--breakdown", action="store_true",
                    help="bytes per file of each part of the archive (see above)")
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
            size, secs, _ = run_lb(b, data, tmp / "w", False)
            print(f"{b}: {size} bytes, {secs:.2f} s, {size / tsize:.4f}x tar czf "
                  f"({(size / tsize - 1) * 100:+.2f}%); {size / args.files:.1f} B a file, "
                  f"tar czf {tsize / args.files:.1f}", flush=True)
            if args.breakdown:
                breakdown(b, data, tmp / "w", args.files)
        if not args.offen:
            return 0
        names = [f"lb{i}" for i in range(len(bins))] + ["offen"]
        secs = {n: [] for n in names}
        cpus = {n: [] for n in names}
        sizes = {}
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            for n in order:
                if n == "offen":
                    size, s, c = run_offen(args.offen, data, tmp / "w")
                else:
                    size, s, c = run_lb(bins[int(n[2:])], data, tmp / "w", True)
                secs[n].append(s)
                cpus[n].append(c)
                sizes[n] = size
                print(f"round {r + 1} {n}: {s:.2f} s, {c:.2f} CPU s, {size} bytes, "
                      f"load {load()}", flush=True)
        print(f"offen: median {statistics.median(secs['offen']):.2f} s, "
              f"{statistics.median(cpus['offen']):.2f} CPU s, {sizes['offen']} bytes")
        for i, b in enumerate(bins):
            n = f"lb{i}"
            ratios = [o / s for o, s in zip(secs["offen"], secs[n])]
            print(f"{b}: median {statistics.median(secs[n]):.2f} s, "
                  f"{statistics.median(cpus[n]):.2f} CPU s, {sizes[n]} bytes; speed / "
                  f"offen's: median {statistics.median(ratios):.2f}x, spread "
                  f"{min(ratios):.2f}-{max(ratios):.2f}x (per round: "
                  + ", ".join(f"{x:.2f}" for x in ratios) + ")")
        print(f"load average at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
