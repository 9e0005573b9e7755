#!/usr/bin/env python3
"""gzip backup speed against offen/docker-volume-backup and the plain tools (issue 18).

Two data sets, each in rounds that alternate the commands (the order reverses every
other round), reporting per row the median seconds, the spread (fastest and slowest
run), peak RSS, archive size, the load average at each run, and the median of the
per-round speed ratios (>1: Lifeboat faster):

mixed (``throughput.py``'s / ``backup-rss.py``'s data set: 1000 small files, then
64 MiB files alternating random bytes and text)
  * ``lb-gzip``   lifeboat backup, default settings (gzip level 6, every CPU), local store
  * ``offen``     offen/docker-volume-backup (``--offen BINARY``, built from its source
                  outside this repository) with its default gzip and ``GPG_PASSPHRASE``
                  (it writes the archive to a temporary file first, then encrypts it)
  * ``tar-pigz``  ``tar -cf - DIR | pigz | gpg --symmetric -z 0``

random (a tree of random files, ``--random-gib``, default 1: 1000 files of 256 B to
16 KiB, then files of 1 to 16 MiB, in 16 directories; incompressible like JPEG or video)
  * ``lb-gzip``   lifeboat backup, default settings
  * ``tar-gpg``   ``tar -cf - DIR | gpg --symmetric -z 0`` (no compression)
  * ``gpg-alone`` ``gpg --symmetric -z 0`` of that tar stream read from a file made
                  before the rounds (the page cache): what encryption alone costs

Every gpg is AES256 with a fresh private home, as Lifeboat's own. Needs ``tar gpg
gpgconf pigz`` on PATH.

    python3 bench/gzip-peers.py --offen /tmp/offen/backup --rounds 5
"""

import argparse
import importlib.util
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("throughput", HERE / "throughput.py")
tp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tp)
brss = tp.brss
GiB, MiB = brss.GiB, brss.MiB


def gen_random(root, size, seed):
    """A deterministic tree of random files of `size` bytes in all."""
    stamp = root / ".bench-complete"
    params = {"size": size, "seed": seed, "kind": "random", "version": 1}
    if stamp.exists() and stamp.read_text() == json.dumps(params):
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(f"random:{seed}:{size}")
    written = 0
    for i in range(1000):
        d = root / "small" / f"d{i // 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        n = rng.randint(256, 16384)
        (d / f"f{i:04d}.jpg").write_bytes(rng.randbytes(n))
        written += n
    i = 0
    while written < size:
        d = root / "media" / f"d{i % 16:02d}"
        d.mkdir(parents=True, exist_ok=True)
        n = min(rng.randint(1 * MiB, 16 * MiB), size - written)
        (d / f"v{i:04d}.mp4").write_bytes(rng.randbytes(n))
        written += n
        i += 1
    stamp.write_text(json.dumps(params))


def run_offen(binary, data, work):
    tmp = tp.fresh_dir(work / "tmp-offen")
    arch = tp.fresh_dir(work / "offen-archive")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "TMPDIR": str(tmp), "TZ": "UTC",
           "BACKUP_SOURCES": str(data), "BACKUP_ARCHIVE": str(arch),
           "BACKUP_FILENAME": "bench-%Y-%m-%dT%H-%M-%S.tar.gz",
           "GPG_PASSPHRASE": brss.PASSPHRASE}
    script = 'env -i "$@" >/dev/null 2>&1 </dev/null & echo $!'
    with tp.TmpWatch(tmp) as tw:
        secs, rcs, rss = tp.run_pids(script, [f"{k}={v}" for k, v in env.items()] + [binary])
    files = list(arch.iterdir())
    size = files[0].stat().st_size if len(files) == 1 else 0
    shutil.rmtree(arch, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    ok = rcs[0] == 0 and len(files) == 1
    if not ok:
        print(f"offen failed: exit {rcs[0]}, files {files}", file=sys.stderr)
    return {"ok": ok, "secs": secs, "rss": rss, "out": size, "tmp": tw.peak}


def run_tar_gpg(data, work, keyfile):
    home = tp.gpg_home(work)
    tmp = tp.fresh_dir(work / "tmp-tar-gpg")
    out = work / "tar-gpg.out"
    script, fifos = tp.pipeline([["tar", "-cf", "-", "-C", str(data.parent), data.name],
                                 tp.gpg_argv(home, keyfile) + ["-o", "-"]], tmp, out)
    secs, rcs, rss = tp.run_pids(script)
    size = out.stat().st_size if out.exists() else 0
    for f in fifos:
        f.unlink(missing_ok=True)
    out.unlink(missing_ok=True)
    tp.kill_agent(home)
    return {"ok": all(rc == 0 for rc in rcs), "secs": secs, "rss": rss, "out": size, "tmp": 0}


def run_gpg_alone(tarfile, work, keyfile):
    home = tp.gpg_home(work)
    tmp = tp.fresh_dir(work / "tmp-gpg-alone")
    out = work / "gpg-alone.out"
    argv = tp.gpg_argv(home, keyfile) + ["-o", "-"]
    script = (f"export TMPDIR='{tmp}'\n" + " ".join(f"'{a}'" for a in argv)
              + f" <'{tarfile}' >'{out}' 2>/dev/null & echo $!\n")
    secs, rcs, rss = tp.run_pids(script)
    size = out.stat().st_size if out.exists() else 0
    out.unlink(missing_ok=True)
    tp.kill_agent(home)
    return {"ok": rcs[0] == 0, "secs": secs, "rss": rss, "out": size, "tmp": 0}


def rounds(fns, n, names):
    """Run every fn once per round, alternating the order; returns per-name run lists."""
    runs = {k: [] for k in names}
    for i in range(n):
        order = list(names) if i % 2 == 0 else list(names)[::-1]
        for k in order:
            r = fns[k]()
            r["load"] = os.getloadavg()[0]
            r["round"] = i
            runs[k].append(r)
            print(f"  round {i} {k}: {r['secs']:.2f}s {r['out']} B rss "
                  f"{r['rss'] / MiB:.1f}Mi load {r['load']:.1f}"
                  f"{'' if r['ok'] else ' FAILED'}", file=sys.stderr, flush=True)
    return runs


def report(title, runs, lb, bases, nbytes):
    print(f"\n{title}")
    print("| row | median s | spread (min–max) s | MB/s (median) | peak RSS | output MB (median) "
          "| load avg (min–max) |")
    print("|---|---|---|---|---|---|---|")
    for k, rs in runs.items():
        secs = [r["secs"] for r in rs]
        med = statistics.median(secs)
        loads = [r["load"] for r in rs]
        print(f"| {k} | {med:.2f} | {min(secs):.2f}–{max(secs):.2f} | {nbytes / 1e6 / med:.1f} "
              f"| {max(r['rss'] for r in rs) / MiB:.1f} MiB "
              f"| {statistics.median(r['out'] for r in rs) / 1e6:.1f} "
              f"| {min(loads):.1f}–{max(loads):.1f} |")
    for b in bases:
        ratios = [rb["secs"] / rl["secs"] for rl, rb in zip(runs[lb], runs[b])]
        sizes = [rl["out"] / rb["out"] for rl, rb in zip(runs[lb], runs[b]) if rb["out"]]
        line = (f"{lb} speed / {b}: median {statistics.median(ratios):.2f}x "
                f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
        if sizes and b != "gpg-alone":
            line += f"; size {lb} / {b}: {statistics.median(sizes):.4f}"
        print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "lifeboat-bench18"))
    ap.add_argument("--bin", default=os.environ.get("LIFEBOAT_BIN",
                                                    str(brss.REPO / "build" / "lifeboat")))
    ap.add_argument("--offen", help="offen/docker-volume-backup's backup binary (mixed set)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--gib", type=float, default=1, help="mixed data set size (GiB)")
    ap.add_argument("--random-gib", type=float, default=1, help="random tree size (GiB)")
    ap.add_argument("--only", choices=("mixed", "random"))
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--json")
    args = ap.parse_args()
    for tool in ("tar", "gpg", "gpgconf", "pigz"):
        if not shutil.which(tool):
            sys.exit(f"required tool missing: {tool}")
    if not brss.become_subreaper():
        sys.exit("cannot become a child subreaper (Linux prctl needed) to measure RSS")
    binary = os.path.abspath(args.bin)
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    keyfile = work / "key"
    keyfile.write_text(brss.PASSPHRASE + "\n")
    os.chmod(keyfile, 0o600)
    store = work / "store"
    out = {}

    def lb():
        tp.fresh_dir(store)
        r, _ = tp.run_lb_backup(binary, None, data, work, keyfile, store, None)
        return r

    print(f"uptime at start: {open('/proc/loadavg').read().strip()}")
    if args.only in (None, "mixed"):
        data = work / f"mixed-{args.gib:g}g"
        brss.generate(data, int(args.gib * GiB), args.seed)
        nbytes = brss.dataset_bytes(data)
        fns = {"lb-gzip": lb,
               "tar-pigz": lambda: tp.run_shell_backup("tar-pigz", data, work, keyfile)}
        if args.offen:
            fns["offen"] = lambda: run_offen(os.path.abspath(args.offen), data, work)
        runs = rounds(fns, args.rounds, list(fns))
        report(f"mixed {args.gib:g} GiB ({nbytes} bytes), {args.rounds} rounds", runs,
               "lb-gzip", [k for k in fns if k != "lb-gzip"], nbytes)
        out["mixed"] = runs
    if args.only in (None, "random"):
        data = work / f"random-{args.random_gib:g}g"
        gen_random(data, int(args.random_gib * GiB), args.seed)
        nbytes = brss.dataset_bytes(data)
        tarfile = work / "random.tar"
        os.system(f"tar -cf '{tarfile}' -C '{data.parent}' '{data.name}'")
        fns = {"lb-gzip": lb, "tar-gpg": lambda: run_tar_gpg(data, work, keyfile),
               "gpg-alone": lambda: run_gpg_alone(tarfile, work, keyfile)}
        runs = rounds(fns, args.rounds, list(fns))
        report(f"random {args.random_gib:g} GiB ({nbytes} bytes), {args.rounds} rounds", runs,
               "lb-gzip", ["tar-gpg", "gpg-alone"], nbytes)
        tarfile.unlink(missing_ok=True)
        out["random"] = runs
    shutil.rmtree(store, ignore_errors=True)
    print(f"uptime at end: {open('/proc/loadavg').read().strip()}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
