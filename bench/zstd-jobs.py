#!/usr/bin/env python3
"""zstd backup (issue 18): Lifeboat against `tar | zstd -T0 | gpg` with the same S2K.

    python3 bench/zstd-jobs.py --gib 1 --rounds 5 --bin build-release/lifeboat
    python3 bench/zstd-jobs.py --bin A --bin B --label A-name --label B-name

The dataset is throughput.py's (backup-rss.py's generator, seed 20240601). Each round runs
every --bin (with BACKUP_COMPRESSION=zstd, the passphrase in a key file, a local store) and
the pipeline `tar -cf - DIR | zstd -T0 -q -c | gpg --symmetric -z 0 --cipher-algo AES256
--s2k-cipher-algo AES256 --s2k-digest-algo SHA512 --s2k-count 65011712` (the S2K Lifeboat's
own gpg uses, so neither side pays gpg-agent's calibration), in alternating order (odd
rounds reversed). Printed: every run (seconds, peak RSS, output bytes), then each binary's
median speed ratio to the pipeline of the same round (pipeline seconds / its seconds) with
the spread (min-max), its archive size against the pipeline's, and the load average.
`--env K=V` (repeatable, one per --bin, `-` for none) passes extra environment to that
binary (for a scratch build with tunable settings).
"""
import argparse
import importlib.util
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(name, file):
    spec = importlib.util.spec_from_file_location(name, HERE / file)
    m = importlib.util.module_from_spec(spec)
    sys.modules[name] = m
    spec.loader.exec_module(m)
    return m


S2K = ["--s2k-cipher-algo", "AES256", "--s2k-digest-algo", "SHA512",
       "--s2k-count", "65011712"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bin", action="append", required=True)
    ap.add_argument("--label", action="append")
    ap.add_argument("--env", action="append")
    ap.add_argument("--dir", default="/tmp/lifeboat-bench-zstd")
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args()
    tp = load("throughput", "throughput.py")
    tp.brss.become_subreaper()
    plain_argv = tp.gpg_argv

    def gpg_argv(home, keyfile, decrypt=False):
        a = plain_argv(home, keyfile, decrypt)
        return a if decrypt else a + S2K

    tp.gpg_argv = gpg_argv
    labels = args.label or [f"lb{i}" for i in range(len(args.bin))]
    envs = args.env or ["-"] * len(args.bin)
    assert len(labels) == len(args.bin) == len(envs)
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    tp.brss.generate(data, int(args.gib * tp.GiB), args.seed)
    keyfile = work / "key"
    keyfile.write_text("bench-passphrase-18\n")
    names = labels + ["tar-zstd"]
    runs = {n: [] for n in names}
    for r in range(args.rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            if n == "tar-zstd":
                res = tp.run_shell_backup("tar-zstd", data, work, keyfile)
            else:
                i = labels.index(n)
                extra = dict(kv.split("=", 1) for kv in envs[i].split(",")) \
                    if envs[i] != "-" else {}
                store = tp.fresh_dir(work / "store")
                saved = tp.lb_env

                def lb_env(*a, **kw):
                    env = saved(*a, **kw)
                    env.update(extra)
                    return env

                tp.lb_env = lb_env
                res, _ = tp.run_lb_backup(args.bin[i], "zstd", data, work, keyfile, store,
                                          None)
                tp.lb_env = saved
            assert res["ok"], (n, res)
            runs[n].append(res)
            la = "%.1f" % os.getloadavg()[0]
            print(f"round {r + 1} {n}: {res['secs']:.2f} s, {res['rss'] / 1048576:.1f} MiB, "
                  f"{res['out']} B, load {la}", flush=True)
    base = runs["tar-zstd"]
    print(f"tar-zstd: median {statistics.median(x['secs'] for x in base):.2f} s, "
          f"{base[0]['out']} B")
    for n in labels:
        ratios = [b["secs"] / x["secs"] for b, x in zip(base, runs[n])]
        out = runs[n][0]["out"]
        print(f"{n}: median {statistics.median(x['secs'] for x in runs[n]):.2f} s, speed / "
              f"tar-zstd median {statistics.median(ratios):.2f}x (spread {min(ratios):.2f}-"
              f"{max(ratios):.2f}), peak RSS {max(x['rss'] for x in runs[n]) / 1048576:.1f} MiB, "
              f"{out} B ({(out / base[0]['out'] - 1) * 100:+.2f}% of tar-zstd's)")
    print("load average at the end: %.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    sys.exit(main())
