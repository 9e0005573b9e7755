#!/usr/bin/env python3
"""The encryption tools alone: gpg with the passphrase, gpg to a public key, age to a recipient.

Each encrypts the same file of random bytes (what a compressed archive looks like to the
cipher) to /dev/null with the arguments Lifeboat gives it (crypt.c), in alternating order
(round i starts at mode i), `--rounds` times (the passphrase and the recipients on a
pipe, as Lifeboat passes them on fd 3). Prints per mode the median and min-max of
MB/s (wall clock) and of CPU seconds (user + system of the tool, from wait4), and the
ratio of each mode to the passphrase run of the same round, with the load average.

    python3 bench/crypt-modes.py --mb 512 --rounds 5

Needs gpg, gpgconf, age and age-keygen on PATH. Only one heavy benchmark at a time.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(argv, stdin_path, fd_data=None):
    """Run argv with stdin from the file and stdout to /dev/null: (wall s, CPU s). With
    `fd_data`, a pipe holding it is passed and "{fd}" in argv names its descriptor."""
    r = None
    if fd_data is not None:
        r, w = os.pipe()
        os.write(w, fd_data)
        os.close(w)
        argv = [a.replace("{fd}", str(r)) for a in argv]
    with open(stdin_path, "rb") as inp, open(os.devnull, "wb") as out:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=inp, stdout=out, stderr=subprocess.PIPE,
                             pass_fds=(r,) if r is not None else ())
        if r is not None:
            os.close(r)
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{argv[0]} failed: {err.decode(errors='replace')[-500:]}")
    return wall, ru.ru_utime + ru.ru_stime


def gpg_base(home):
    return ["gpg", f"--homedir={home}", "--batch", "--no-tty", "--quiet", "--no-options",
            "--no-symkey-cache", "--pinentry-mode=loopback"]


def fresh_home(work, name):
    h = work / name
    shutil.rmtree(h, ignore_errors=True)
    h.mkdir(mode=0o700)
    return h


def kill_agent(home):
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                   capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=512, help="size of the input (MiB)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "lifeboat-crypt-bench"))
    args = ap.parse_args()
    for tool in ("gpg", "gpgconf", "age", "age-keygen"):
        if not shutil.which(tool):
            sys.exit(f"required tool missing: {tool}")
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "random.bin"
    if not data.exists() or data.stat().st_size != args.mb << 20:
        with open(data, "wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1 << 20))
    keyhome = fresh_home(work, "keyhome")
    g = gpg_base(keyhome) + ["--passphrase", ""]
    subprocess.run(g + ["--quick-gen-key", "Bench <b@example.org>", "future-default",
                        "default", "1y"], check=True, capture_output=True)
    pub = subprocess.run(g + ["--armor", "--export", "<b@example.org>"], check=True,
                         capture_output=True).stdout
    fpr = [l.split(":")[9] for l in subprocess.run(
        g + ["--with-colons", "--list-keys", "<b@example.org>"], check=True,
        capture_output=True, text=True).stdout.splitlines() if l.startswith("fpr:")][0]
    kill_agent(keyhome)
    ident = work / "age.key"
    ident.unlink(missing_ok=True)
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    rec = subprocess.run(["age-keygen", "-y", str(ident)], check=True, capture_output=True,
                         text=True).stdout

    def m_pass():
        h = fresh_home(work, "h-pass")
        argv = gpg_base(h) + ["--passphrase-fd={fd}", "--symmetric", "--s2k-cipher-algo=AES256",
                              "--s2k-digest-algo=SHA512", "--s2k-count=65011712",
                              "--cipher-algo=AES256", "--compress-algo=none", "--output=-"]
        r = run(argv, data, fd_data=b"bench-passphrase\n")
        kill_agent(h)
        return r

    def m_pub():
        h = fresh_home(work, "h-pub")
        subprocess.run(gpg_base(h) + ["--import"], input=pub, check=True, capture_output=True)
        argv = gpg_base(h) + ["--encrypt", "--trust-model=always", f"--recipient={fpr}",
                              "--cipher-algo=AES256", "--compress-algo=none", "--output=-"]
        r = run(argv, data)
        kill_agent(h)
        return r

    def m_age():
        return run(["age", "--encrypt", "--recipients-file=/dev/fd/{fd}"], data,
                   fd_data=rec.encode())

    modes = [("gpg-pass", m_pass), ("gpg-pub", m_pub), ("age", m_age)]
    wall = {n: [] for n, _ in modes}
    cpu = {n: [] for n, _ in modes}
    la0 = os.getloadavg()
    for i in range(args.rounds):
        for name, fn in modes[i % len(modes):] + modes[:i % len(modes)]:
            w, c = fn()
            wall[name].append(w)
            cpu[name].append(c)
            print(f"round {i + 1} {name}: {w:.2f}s {args.mb * 1.048576 / w:.0f} MB/s, "
                  f"{c:.2f} CPU s", file=sys.stderr)
    la1 = os.getloadavg()
    mb = args.mb * 1.048576
    fmt = lambda v: " / ".join(f"{x:.2f}" for x in v)
    print(f"{args.mb} MiB of random bytes, {args.rounds} alternating rounds, load "
          f"{fmt(la0)} -> {fmt(la1)}; ratio: gpg-pass's / this mode's, same round "
          f"(>1: faster than the passphrase)")
    print(f"{'mode':<9} {'MB/s med':>9} {'min-max':>11} {'ratio':>6} {'min-max':>11} "
          f"{'CPU s med':>9} {'min-max':>11} {'CPU ratio':>9} {'min-max':>11}")
    for name, _ in modes:
        mbs = [mb / w for w in wall[name]]
        r = [p / w for p, w in zip(wall["gpg-pass"], wall[name])]
        cr = [p / c for p, c in zip(cpu["gpg-pass"], cpu[name])]
        print(f"{name:<9} {statistics.median(mbs):>9.0f} {min(mbs):>5.0f}-{max(mbs):<5.0f} "
              f"{statistics.median(r):>6.3f} {min(r):>5.2f}-{max(r):<5.2f} "
              f"{statistics.median(cpu[name]):>9.2f} {min(cpu[name]):>5.2f}-"
              f"{max(cpu[name]):<5.2f} {statistics.median(cr):>9.3f} {min(cr):>5.2f}-"
              f"{max(cr):<5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
