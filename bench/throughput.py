#!/usr/bin/env python3
"""Backup and restore throughput of Lifeboat against shell-pipeline baselines.

For every dataset size (GiB, ``--sizes 1,4`` by default) this generates the
deterministic mixed dataset of ``backup-rss.py`` (1000 small files, then 64 MiB
files alternating random bytes and pseudo-English text) and, in the same run
on the same data, measures:

backups
  * ``lb-gzip``      lifeboat backup, BACKUP_COMPRESSION=gzip (default), local store
  * ``lb-zstd``      lifeboat backup, BACKUP_COMPRESSION=zstd, local store
  * ``lb-gzip+s3`` / ``lb-zstd+s3``   the same to local + S3 at once (``--s3``)
  * ``tar-gzip``     ``tar czf - DIR | gpg --symmetric -z 0``   (the spec-style pipeline)
  * ``tar-pigz``     ``tar -cf - DIR | pigz | gpg --symmetric -z 0``
  * ``tar-zstd``     ``tar -cf - DIR | zstd -T0 | gpg --symmetric -z 0``
  * ``lb-zstd-pub`` / ``lb-zstd-age`` / ``lb-zstd-sign``   (``--keys``) lifeboat backup with
    zstd to an OpenPGP public key, to an age recipient, and with the passphrase plus a
    detached signature, each right after an ``lb-zstd`` passphrase run (compared with it);
    ``--keys-rounds N`` runs only passphrase / public key / age backups, alternating, N
    rounds, and prints the median and spread of same-round ratios (wall clock and CPU)

restores (of lifeboat's own archives, into an empty directory)
  * ``lb-gzip``/``lb-zstd``  lifeboat restore (decrypt, decompress, check every SHA-256, swap)
  * ``gpg|tar-gzip``         ``gpg -d ARCHIVE | tar xz``
  * ``gpg|tar-zstd``         ``gpg -d ARCHIVE | zstd -d | tar x``

and prints MB/s (dataset bytes / 10^6 / wall seconds), the ratio of each
lifeboat row to each baseline of its kind, peak RSS (``ru_maxrss`` of every
process of a run, the largest; lifeboat's figure covers its gpg child) and the
peak bytes of temporary disk: every run gets its own empty TMPDIR that is
polled every 0.1 s (lifeboat puts only gpg's private home, a few hundred
bytes, there; an archive is never staged).

    python3 bench/throughput.py --sizes 1          # about 5 minutes on 2 cores
    python3 bench/throughput.py --sizes 1,4 --s3   # MinIO: LB_S3_ENDPOINT etc.
    python3 bench/throughput.py --sizes 1 --bin NEW --compare-bin OLD --repeat 2

With ``--compare-bin OLD`` every lifeboat row also runs with the binary OLD in
the same run, on the same data with the same environment, as a row of its own
(``lb-gzip@old``; ``--compare-label`` names it): both binaries' restores read
the same archive (the current binary's). The runs of one group (the two
lifeboat binaries and their baselines) alternate, and with ``--repeat`` the
order reverses every other round (A B C, C B A, ...), so that a drift in the
machine's other load falls on both binaries alike. A footer gives each row's
new/old ratios of speed and peak RSS and both binaries' ratios to the baselines.

Only one heavy benchmark at a time: the machine's cores are the thing measured.
"""

import argparse
import importlib.util
import json
import os
import resource
import shlex
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("backup_rss", HERE / "backup-rss.py")
brss = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(brss)

GiB, MiB = brss.GiB, brss.MiB
PASSPHRASE = brss.PASSPHRASE


class TmpWatch:
    """Peak total size of the regular files below a directory, polled in a thread."""

    def __init__(self, path):
        self.path = Path(path)
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _size(self):
        total = 0
        for dirpath, _, files in os.walk(self.path):
            for n in files:
                try:
                    st = os.lstat(os.path.join(dirpath, n))
                except OSError:
                    continue
                if not os.path.islink(os.path.join(dirpath, n)):
                    total += st.st_blocks * 512 if st.st_blocks else st.st_size
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._size())
            self._stop.wait(0.1)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._size())


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# CPU seconds (user + system) of the last run_pids(): its processes and the children they
# waited for (lifeboat's gpg or age child; not a daemonised gpg-agent).
LAST_CPU = [0.0]
# CPU seconds of every process of the last run_pids() (as subreaper it reaps them all).
LAST = {"cpu": 0.0}


def run_pids(script, args=()):
    """Start the processes of `script` (each prints its pid) and wait for all of them."""
    t0 = time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    pids = brss.spawn(script, args)
    rcs, rss, cpu = [], 0, 0.0
    for pid in pids:
        _, status, ru = os.wait4(pid, 0)
        rcs.append(os.waitstatus_to_exitcode(status))
        rss = max(rss, ru.ru_maxrss * 1024)  # Linux: KiB
        cpu += ru.ru_utime + ru.ru_stime
    LAST_CPU[0] = cpu
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST["cpu"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return time.monotonic() - t0, rcs, rss


def pipeline(stages, tmp, out=None):
    """Shell text starting `stages` (argv lists) connected by FIFOs, each in the background.

    Nothing here is secret (the passphrase is in a file), so plain quoting is enough.
    """
    fifos = []
    lines = [f"export TMPDIR={shlex.quote(str(tmp))}"]
    for i in range(len(stages) - 1):
        f = tmp.parent / f"{tmp.name}.fifo{i}"
        f.unlink(missing_ok=True)
        os.mkfifo(f, 0o600)
        fifos.append(f)
    for i, argv in enumerate(stages):
        cmd = " ".join(shlex.quote(a) for a in argv)
        src = "/dev/null" if i == 0 else str(fifos[i - 1])
        dst = str(fifos[i]) if i < len(stages) - 1 else (str(out) if out else "/dev/null")
        lines.append(f"{cmd} <{shlex.quote(src)} >{shlex.quote(dst)} 2>/dev/null & echo $!")
    return "\n".join(lines) + "\n", fifos


def gpg_argv(home, keyfile, decrypt=False):
    base = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
            "--passphrase-file", str(keyfile)]
    if decrypt:
        return base + ["-d"]
    # The S2K lifeboat's gpg uses (crypt.c): a fixed count, no agent calibration.
    return base + ["--symmetric", "--cipher-algo", "AES256", "-z", "0",
                   "--s2k-cipher-algo", "AES256", "--s2k-digest-algo", "SHA512",
                   "--s2k-count", "65011712"]


def gpg_home(work):
    home = Path(tempfile.mkdtemp(prefix="g", dir="/tmp"))
    os.chmod(home, 0o700)
    return home


def kill_agent(home):
    import subprocess
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                   stderr=subprocess.DEVNULL)
    shutil.rmtree(home, ignore_errors=True)


def run_shell_backup(kind, data, work, keyfile):
    comp = {"tar-gzip": [["tar", "czf", "-", "-C", str(data.parent), data.name]],
            "tar-pigz": [["tar", "-cf", "-", "-C", str(data.parent), data.name], ["pigz"]],
            "tar-zstd": [["tar", "-cf", "-", "-C", str(data.parent), data.name],
                         ["zstd", "-T0", "-q", "-c"]]}[kind]
    home = gpg_home(work)
    tmp = fresh_dir(work / f"tmp-{kind}")
    out = work / f"{kind}.out"
    out.unlink(missing_ok=True)
    script, fifos = pipeline(comp + [gpg_argv(home, keyfile) + ["-o", "-"]], tmp, out)
    with TmpWatch(tmp) as tw:
        secs, rcs, rss = run_pids(script)
    size = out.stat().st_size if out.exists() else 0
    for f in fifos:
        f.unlink(missing_ok=True)
    out.unlink(missing_ok=True)
    kill_agent(home)
    ok = all(rc == 0 for rc in rcs)
    if not ok:
        print(f"{kind} failed: exit codes {rcs}", file=sys.stderr)
    return {"ok": ok, "secs": secs, "rss": rss, "out": size, "tmp": tw.peak}


def lb_env(work, store, keyfile, dirs, tmp, comp=None, threads=None, s3=None, state="state"):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "TMPDIR": str(tmp), "TZ": "UTC",
           "BACKUP_NAME": "bench", "BACKUP_LOCAL_PATH": str(store),
           "BACKUP_ENCRYPTION_KEY_FILE": str(keyfile), "BACKUP_DIRS": f"{dirs}:data",
           "BACKUP_STATE_DIR": str(work / state), "BACKUP_LOG_FILE": "/dev/null"}
    if comp:
        env["BACKUP_COMPRESSION"] = comp
    if threads:
        env["BACKUP_COMPRESSION_THREADS"] = str(threads)
    if s3:
        env.update(BACKUP_S3_BUCKET=s3["bucket"], BACKUP_S3_ENDPOINT=s3["endpoint"],
                   BACKUP_S3_ACCESS_KEY=s3["access"], BACKUP_S3_SECRET_KEY=s3["secret"])
    return env


def run_lb(binary, args, env, errlog):
    script = 'e=$1; shift; env -i "$@" >"$e.out" 2>"$e" </dev/null & echo $!'
    secs, rcs, rss = run_pids(script, [str(errlog)] + [f"{k}={v}" for k, v in env.items()]
                              + [binary] + args)
    if rcs[0] != 0:
        print(f"lifeboat {' '.join(args)} failed (exit {rcs[0]}):\n"
              f"{errlog.read_text(errors='replace')[-2000:]}", file=sys.stderr)
    return secs, rcs[0] == 0, rss


def state_of(label):
    """Each binary keeps its own BACKUP_STATE_DIR (the two may not agree on its files)."""
    return "state" if not label else f"state@{label}"


def run_lb_backup(binary, comp, data, work, keyfile, store, threads, s3=None, label=None,
                  keys=None):
    """Back up into `store`; returns the result and the archive path (kept for restores).

    `label` marks a run of the --compare-bin binary (its files get "@label"); `keys`:
    (row suffix, environment) of a public-key mode (--keys)."""
    name = (f"lb-{comp}" + ("+s3" if s3 else "") + (f"-{keys[0]}" if keys else "")
            + (f"@{label}" if label else ""))
    tmp = fresh_dir(work / f"tmp-{name}")
    env = lb_env(work, store, keyfile, data, tmp, comp, threads, s3, state_of(label))
    if keys:
        for k, v in keys[1].items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    pat = "*.age" if keys and keys[0] == "age" else "*.gpg"
    before = set(store.rglob(pat)) if store.exists() else set()
    with TmpWatch(tmp) as tw:
        secs, ok, rss = run_lb(binary, ["backup"], env, work / f"{name}.stderr")
    new = sorted(set(store.rglob(pat)) - before)
    size = new[0].stat().st_size if new else 0
    if s3:
        brss.s3_cleanup(s3, "bench/")
    shutil.rmtree(tmp, ignore_errors=True)
    return {"ok": ok and bool(new), "secs": secs, "rss": rss, "out": size, "tmp": tw.peak}, \
        (new[0] if new else None)


def run_lb_restore(binary, archive, work, keyfile, store, label=None):
    sfx = f"@{label}" if label else ""
    target = fresh_dir(work / "restore-target")
    tmp = fresh_dir(work / f"tmp-restore{sfx}")
    ts = archive.name[len("bench-"):len("bench-") + 17]
    env = lb_env(work, store, keyfile, target, tmp, state=state_of(label))
    with TmpWatch(tmp) as tw:
        secs, ok, rss = run_lb(binary, ["restore", ts, "--yes"], env,
                               work / f"restore{sfx}.stderr")
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return {"ok": ok, "secs": secs, "rss": rss, "out": 0, "tmp": tw.peak, "cpu": LAST["cpu"]}


def run_shell_restore(archive, comp, work, keyfile):
    target = fresh_dir(work / "restore-target")
    tmp = fresh_dir(work / "tmp-restore-shell")
    home = gpg_home(work)
    stages = [gpg_argv(home, keyfile, decrypt=True) + [str(archive)]]
    if comp == "zstd":
        stages += [["zstd", "-d", "-q", "-c"], ["tar", "-xf", "-", "-C", str(target)]]
    else:
        stages += [["tar", "-xzf", "-", "-C", str(target)]]
    script, fifos = pipeline(stages, tmp)
    with TmpWatch(tmp) as tw:
        secs, rcs, rss = run_pids(script)
    for f in fifos:
        f.unlink(missing_ok=True)
    kill_agent(home)
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    ok = all(rc == 0 for rc in rcs)
    if not ok:
        print(f"gpg|tar-{comp} restore failed: exit codes {rcs}", file=sys.stderr)
    return {"ok": ok, "secs": secs, "rss": rss, "out": 0, "tmp": tw.peak, "cpu": LAST["cpu"]}


# Which baselines each lifeboat row is compared with.
RATIOS = {
    ("backup", "lb-gzip"): ["tar-gzip", "tar-pigz"],
    ("backup", "lb-gzip+s3"): ["tar-gzip", "tar-pigz"],
    ("backup", "lb-zstd"): ["tar-zstd"],
    ("backup", "lb-zstd+s3"): ["tar-zstd"],
    ("backup", "lb-zstd-pub"): ["lb-zstd", "tar-zstd"],
    ("backup", "lb-zstd-age"): ["lb-zstd", "tar-zstd"],
    ("backup", "lb-zstd-sign"): ["lb-zstd", "tar-zstd"],
    ("restore", "lb-gzip"): ["gpg|tar-gzip"],
    ("restore", "lb-zstd"): ["gpg|tar-zstd"],
}


def base_tool(tool):
    """The row name without the --compare-bin label: lb-gzip@old -> lb-gzip."""
    return tool.split("@", 1)[0]


def print_table(results, sizes, label=None):
    by = {(r["size_gib"], r["op"], r["tool"]): r for r in results}
    w = max([13] + [len(r["tool"]) for r in results])
    hdr = (f"{'size':>6} {'op':<8} {'tool':<{w}} {'seconds':>8} {'MB/s':>7} "
           f"{'peak RSS':>9} {'tmp disk':>9} {'out MB':>8}  ratio (MB/s) to baselines")
    print(hdr)
    print("-" * len(hdr))
    for i, r in enumerate(results):
        mbs = r["bytes"] / 1e6 / r["secs"] if r["ok"] and r["secs"] > 0 else 0
        ratios = []
        bases = list(RATIOS.get((r["op"], base_tool(r["tool"])), []))
        if label and r["tool"] in (t for _, t in RATIOS):
            bases.append(f"{r['tool']}@{label}")  # speed new/old
        for b in bases:
            br = by.get((r["size_gib"], r["op"], b))
            if r["tool"].startswith("lb-zstd-") and b == "lb-zstd" and i:
                br = results[i - 1]  # its own passphrase run, just before it
            if r["ok"] and br and br["ok"]:
                ratios.append(f"{br['secs'] / r['secs']:.2f}x {b}")
        print(f"{r['size_gib']:>4g}Gi {r['op']:<8} {r['tool']:<{w}} {r['secs']:>8.1f} "
              f"{mbs:>7.1f} {r['rss'] / MiB:>7.1f}Mi {r['tmp']:>9d} {r['out'] / 1e6:>8.1f}  "
              f"{', '.join(ratios)}{'' if r['ok'] else '  FAILED'}")
    if len(sizes) >= 2:
        lo, hi = min(sizes), max(sizes)
        print()
        for (s, op, tool), r in sorted(by.items()):
            if s != hi or not tool.startswith("lb-") or "@" in tool:
                continue
            a = by.get((lo, op, tool))
            if a and a["ok"] and r["ok"] and a["rss"]:
                print(f"peak RSS {hi:g} GiB / {lo:g} GiB, {op} {tool}: "
                      f"{r['rss'] / MiB:.1f}Mi / {a['rss'] / MiB:.1f}Mi = "
                      f"{r['rss'] / a['rss']:.2f}")
    if label:
        print_compare(by, label)


def print_compare(by, label):
    """new/old: each lifeboat row of the current binary against its --compare-bin twin."""
    print()
    print(f"new/old (--bin / --compare-bin '{label}'; speed = MB/s ratio, >1: new faster; "
          f"every run's seconds in brackets):")
    for (s, op, tool), new in by.items():
        old = by.get((s, op, f"{tool}@{label}"))
        if (op, tool) not in RATIOS or not old:
            continue
        line = f"{s:>4g}Gi {op:<8} {tool:<13}"
        if not (new["ok"] and old["ok"]):
            print(f"{line} FAILED ({'new' if not new['ok'] else 'old'})")
            continue
        line += (f" speed {old['secs'] / new['secs']:.2f}, peak RSS "
                 f"{new['rss'] / old['rss']:.2f} ({new['rss'] / MiB:.1f}Mi/"
                 f"{old['rss'] / MiB:.1f}Mi); new {new.get('all_secs')}s old "
                 f"{old.get('all_secs')}s")
        for b in RATIOS[(op, tool)]:
            br = by.get((s, op, b))
            if br and br["ok"]:
                line += (f"; to {b}: new {br['secs'] / new['secs']:.2f}x "
                         f"old {br['secs'] / old['secs']:.2f}x")
        print(line)
        for b in RATIOS[(op, tool)]:
            br = by.get((s, op, b))
            if br and br["ok"]:
                print_rounds(f"{s:>4g}Gi {op:<8}", b, br, [(tool, new), (f"{tool}@{label}", old)])


def med(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2 if n else 0.0


def print_rounds(head, base, br, rows):
    """The same-round ratios (the runs alternate): median (min-max), and CPU seconds."""
    bs, bc = br.get("all_secs", []), br.get("all_cpu", [])
    print(f"{head} {base:<13} median {med(bs):.2f}s ({min(bs):.2f}-{max(bs):.2f}), "
          f"CPU {med(bc):.2f}s ({min(bc):.2f}-{max(bc):.2f})")
    for tool, r in rows:
        secs, cpu = r.get("all_secs", []), r.get("all_cpu", [])
        q = [b / x for b, x in zip(bs, secs) if x]
        if not q:
            continue
        print(f"{head} {tool:<13} median {med(secs):.2f}s ({min(secs):.2f}-{max(secs):.2f}), "
              f"CPU {med(cpu):.2f}s ({min(cpu):.2f}-{max(cpu):.2f}); same-round speed to "
              f"{base}: median {med(q):.2f}x ({min(q):.2f}-{max(q):.2f})")


def make_keys(work):
    """The --keys modes: an OpenPGP public key, an age recipient, a signing key."""
    import subprocess
    for tool in ("age", "age-keygen"):
        if not shutil.which(tool):
            sys.exit(f"required tool missing: {tool}")
    home = fresh_dir(work / "keyhome")
    os.chmod(home, 0o700)
    g = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
         "--passphrase", ""]
    subprocess.run(g + ["--quick-gen-key", "Bench <b@example.org>", "future-default",
                        "default", "1y"], check=True, capture_output=True)
    subprocess.run(g + ["--quick-gen-key", "Signer <s@example.org>", "ed25519", "sign",
                        "1y"], check=True, capture_output=True)
    pub, sig = work / "bench.asc", work / "signer.sec"
    pub.write_bytes(subprocess.run(g + ["--armor", "--export", "<b@example.org>"],
                                   check=True, capture_output=True).stdout)
    sig.write_bytes(subprocess.run(g + ["--armor", "--export-secret-keys", "<s@example.org>"],
                                   check=True, capture_output=True).stdout)
    kill_agent(home)
    ident = work / "age.key"
    ident.unlink(missing_ok=True)
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    rec = subprocess.run(["age-keygen", "-y", str(ident)], check=True, capture_output=True,
                         text=True).stdout.strip()
    return [("pub", {"BACKUP_ENCRYPTION_KEY_FILE": None, "BACKUP_GPG_PUBLIC_KEYS": str(pub)}),
            ("age", {"BACKUP_ENCRYPTION_KEY_FILE": None, "BACKUP_ENCRYPTION": "age",
                     "BACKUP_AGE_RECIPIENTS": rec}),
            ("sign", {"BACKUP_SIGNING_KEY_FILE": str(sig)})]


def loadavg():
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def keys_rounds(binary, comps, rounds, data, nbytes, work, keyfile, threads, modes, gib):
    """--keys-rounds: the passphrase, public-key and age backups of the same data, in
    alternating order (round i starts at mode i, rotating), `rounds` times per compression.
    Each key mode's ratio is to the passphrase run of the same round: the median and the
    spread (min-max) of those ratios, of wall-clock speed and of CPU seconds (lifeboat and
    its gpg/age child: less moved by the machine's other load), with the load average."""
    out = []
    all_modes = [("pass", None)] + modes
    for comp in comps:
        secs = {m[0]: [] for m in all_modes}
        cpu = {m[0]: [] for m in all_modes}
        la0 = loadavg()
        for i in range(rounds):
            order = all_modes[i % len(all_modes):] + all_modes[:i % len(all_modes)]
            for name, env in order:
                store = fresh_dir(work / "store-keys")
                r, arch = run_lb_backup(binary, comp, data, work, keyfile, store, threads,
                                        keys=(name, env) if env else None)
                cpu[name].append(LAST_CPU[0])
                shutil.rmtree(store, ignore_errors=True)
                if not r["ok"]:
                    sys.exit(f"--keys-rounds: lb-{comp}-{name} failed (see {work}/*.stderr)")
                secs[name].append(r["secs"])
                print(f"[{gib:g} GiB] round {i + 1} lb-{comp}-{name}: {r['secs']:.2f}s "
                      f"{nbytes / 1e6 / r['secs']:.1f} MB/s, {LAST_CPU[0]:.2f} CPU s, "
                      f"load {loadavg()}", file=sys.stderr)
        la1 = loadavg()
        for name, _ in all_modes:
            ratios = [p / s for p, s in zip(secs["pass"], secs[name])]
            cratios = [p / s for p, s in zip(cpu["pass"], cpu[name])]
            out.append({"comp": comp, "mode": name, "secs": secs[name], "cpu": cpu[name],
                        "mbs": [nbytes / 1e6 / x for x in secs[name]],
                        "ratios": ratios, "cpu_ratios": cratios, "load_before": la0,
                        "load_after": la1})
    print(f"\n{gib:g} GiB, {rounds} alternating rounds; ratio: the passphrase run's seconds / "
          f"this run's, same round (>1: faster than the passphrase path)")
    print(f"{'row':<18} {'median MB/s':>11} {'MB/s min-max':>15} {'median ratio':>12} "
          f"{'ratio min-max':>15} {'CPU s':>6} {'CPU ratio':>9} {'min-max':>13}  "
          f"load before -> after")
    med = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else \
        (sorted(v)[len(v) // 2 - 1] + sorted(v)[len(v) // 2]) / 2
    for o in out:
        print(f"{'lb-' + o['comp'] + '-' + o['mode']:<18} {med(o['mbs']):>11.1f} "
              f"{min(o['mbs']):>7.1f}-{max(o['mbs']):<7.1f} {med(o['ratios']):>12.3f} "
              f"{min(o['ratios']):>7.3f}-{max(o['ratios']):<7.3f} {med(o['cpu']):>6.1f} "
              f"{med(o['cpu_ratios']):>9.3f} {min(o['cpu_ratios']):>6.3f}-"
              f"{max(o['cpu_ratios']):<6.3f}  {o['load_before']} -> {o['load_after']}")
    return out


def run_tar_gpg(data, work, keyfile):
    """``tar -cf - DIR | gpg --symmetric -z 0`` (no compression), same S2K."""
    home = gpg_home(work)
    tmp = fresh_dir(work / "tmp-tar-gpg")
    out = work / "tar-gpg.out"
    script, fifos = pipeline([["tar", "-cf", "-", "-C", str(data.parent), data.name],
                              gpg_argv(home, keyfile) + ["-o", "-"]], tmp, out)
    secs, rcs, rss = run_pids(script)
    size = out.stat().st_size if out.exists() else 0
    for f in fifos:
        f.unlink(missing_ok=True)
    out.unlink(missing_ok=True)
    kill_agent(home)
    return {"ok": all(rc == 0 for rc in rcs), "secs": secs, "rss": rss, "out": size, "tmp": 0}


def pipe_rounds(binary, old_bin, label, rounds, gib, work, keyfile, seed, threads):
    """--pipe-rounds: the two pipeline goals of issue 18, alternated `rounds` times (the
    order reverses every other round). incompressible: lifeboat's default gzip backup of a
    tree of random files (gzip-peers.py's) against ``tar | gpg -z 0``; zstd: lifeboat's
    zstd backup of the mixed set against ``tar | zstd -T0 | gpg``. Every gpg has
    lifeboat's S2K. Per row: median seconds and spread, CPU seconds (user + system of the
    command's processes and their children: lifeboat with gpg, or tar + zstd + gpg),
    output bytes and peak RSS; per lifeboat row the median and spread of the same-round
    ratios baseline seconds / lifeboat seconds (>1: lifeboat faster), of wall and CPU."""
    spec = importlib.util.spec_from_file_location("gzip_peers", HERE / "gzip-peers.py")
    gp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gp)
    sets = []
    rnd = work / f"random-{gib:g}g"
    gp.gen_random(rnd, int(gib * GiB), seed)
    mixed = work / f"data-{gib:g}g"
    brss.generate(mixed, int(gib * GiB), seed)
    sets.append(("incompressible", rnd, "gzip", "tar-gpg",
                 lambda: run_tar_gpg(rnd, work, keyfile)))
    sets.append(("zstd", mixed, "zstd", "tar-zstd",
                 lambda: run_shell_backup("tar-zstd", mixed, work, keyfile)))
    med = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else \
        (sorted(v)[len(v) // 2 - 1] + sorted(v)[len(v) // 2]) / 2
    out = []
    for name, data, comp, base, base_fn in sets:
        nbytes = brss.dataset_bytes(data)
        bins = [(binary, None)] + ([(old_bin, label)] if old_bin else [])
        rows = {}

        def lb_fn(b, lb):
            store = fresh_dir(work / "store-rounds")
            r, _ = run_lb_backup(b, comp, data, work, keyfile, store, threads, label=lb)
            shutil.rmtree(store, ignore_errors=True)
            return r

        fns = [(f"lb-{comp}" + (f"@{lb}" if lb else ""), lambda b=b, lb=lb: lb_fn(b, lb))
               for b, lb in bins] + [(base, base_fn)]
        for i in range(rounds):
            for row, fn in (fns if i % 2 == 0 else fns[::-1]):
                r = fn()
                r["cpu"] = LAST_CPU[0]
                r["load"] = os.getloadavg()[0]
                rows.setdefault(row, []).append(r)
                print(f"[{name}] round {i + 1} {row}: {r['secs']:.2f}s {r['cpu']:.2f} CPU s "
                      f"{r['out']} B load {loadavg()}{'' if r['ok'] else ' FAILED'}",
                      file=sys.stderr)
        print(f"\n{name}: {nbytes} bytes, {rounds} alternated rounds, baseline {base}")
        print(f"{'row':<14} {'median s':>9} {'min-max s':>13} {'CPU s':>6} {'CPU min-max':>12} "
              f"{'out B (median)':>15} {'RSS MiB':>8} {'ratio':>6} {'ratio min-max':>13} "
              f"{'CPU ratio':>9} {'load min-max':>12}")
        b = rows[base]
        for row, runs in rows.items():
            secs = [r["secs"] for r in runs]
            cpu = [r["cpu"] for r in runs]
            ratio = [x["secs"] / r["secs"] for x, r in zip(b, runs)]
            cratio = [x["cpu"] / r["cpu"] for x, r in zip(b, runs) if r["cpu"]]
            load = [r["load"] for r in runs]
            print(f"{row:<14} {med(secs):>9.2f} {min(secs):>6.2f}-{max(secs):<6.2f} "
                  f"{med(cpu):>6.2f} {min(cpu):>5.2f}-{max(cpu):<6.2f} "
                  f"{med([r['out'] for r in runs]):>15.0f} "
                  f"{max(r['rss'] for r in runs) / MiB:>8.1f} {med(ratio):>6.3f} "
                  f"{min(ratio):>6.3f}-{max(ratio):<6.3f} {med(cratio):>9.3f} "
                  f"{min(load):>5.1f}-{max(load):<6.1f}")
            out.append({"set": name, "row": row, "runs": runs, "ratios": ratio,
                        "cpu_ratios": cratio})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,4", help="dataset sizes in GiB, comma separated")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "lifeboat-bench"))
    ap.add_argument("--bin", default=os.environ.get("LIFEBOAT_BIN",
                                                    str(brss.REPO / "build" / "lifeboat")))
    ap.add_argument("--compare-bin", metavar="OLD_BINARY",
                    help="also run every lifeboat row with this binary, alternating with "
                         "--bin and the baselines, as rows of their own (lb-gzip@old)")
    ap.add_argument("--compare-label", default="old", metavar="LABEL",
                    help="suffix of the --compare-bin rows (default: old)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--threads", type=int, help="BACKUP_COMPRESSION_THREADS (default: auto)")
    ap.add_argument("--keep", action="store_true", help="keep the datasets for later runs")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each measurement N times, report the fastest (noisy machines); "
                         "peak RSS and temporary disk are the largest of the N")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--restore-only", action="store_true",
                    help="make the archives with one --bin backup each (no baselines, not "
                    "repeated) and measure only the restores")
    ap.add_argument("--s3", action="store_true", help="also back up to local + S3 at once")
    ap.add_argument("--pipe-rounds", type=int, metavar="N",
                    help="only the incompressible (random tree, gzip) and zstd backups "
                         "against tar | gpg -z0 and tar | zstd -T0 | gpg, N alternated "
                         "rounds (with --compare-bin, the old binary in each round too)")
    ap.add_argument("--keys", action="store_true",
                    help="also back up to a gpg public key, an age recipient, and signed")
    ap.add_argument("--keys-rounds", type=int, metavar="N",
                    help="only the --keys comparison: passphrase, public key and age backups "
                         "alternating, N rounds per --keys-comp, median and spread of the "
                         "same-round ratios")
    ap.add_argument("--keys-comp", default="zstd,gzip",
                    help="compressions of --keys-rounds (default: zstd,gzip)")
    ap.add_argument("--s3-endpoint", default=os.environ.get("LB_S3_ENDPOINT"))
    ap.add_argument("--s3-bucket", default=os.environ.get("LB_S3_BUCKET", "lifeboat-bench"))
    ap.add_argument("--s3-access-key", default=os.environ.get("LB_S3_ACCESS_KEY"))
    ap.add_argument("--s3-secret-key", default=os.environ.get("LB_S3_SECRET_KEY"))
    args = ap.parse_args()

    s3 = None
    if args.s3:
        if not (args.s3_endpoint and args.s3_access_key and args.s3_secret_key):
            ap.error("--s3 needs an endpoint and keys (--s3-* or LB_S3_*)")
        s3 = {"endpoint": args.s3_endpoint, "bucket": args.s3_bucket,
              "access": args.s3_access_key, "secret": args.s3_secret_key}
        brss.s3_prepare(s3)
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        sys.exit(f"lifeboat binary not found: {binary}")
    label = old_bin = None
    if args.compare_bin:
        old_bin = os.path.abspath(args.compare_bin)
        if not os.access(old_bin, os.X_OK):
            sys.exit(f"--compare-bin: lifeboat binary not found: {old_bin}")
        label = args.compare_label
        if not label or any(c in label for c in "@/|") or label.strip() != label:
            sys.exit(f"--compare-label: '{label}' must be a non-empty word without @ / |")
        print(f"new: {binary}\nold ({label}): {old_bin}", file=sys.stderr)
    for tool in ("tar", "gpg", "gpgconf", "gzip", "pigz", "zstd"):
        if not shutil.which(tool):
            sys.exit(f"required tool missing: {tool}")
    if not brss.become_subreaper():
        sys.exit("cannot become a child subreaper (Linux prctl needed) to measure RSS")

    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    keyfile = work / "key"
    keyfile.write_text(PASSPHRASE + "\n")
    os.chmod(keyfile, 0o600)
    print(f"CPUs: {os.cpu_count()} online, {len(os.sched_getaffinity(0))} usable",
          file=sys.stderr)

    results = []
    if args.pipe_rounds:
        gib = float(args.sizes.split(",")[0])
        print(f"uptime at start: {loadavg()}")
        res = pipe_rounds(binary, old_bin, label, args.pipe_rounds, gib, work, keyfile,
                          args.seed, args.threads)
        print(f"uptime at end: {loadavg()}")
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2))
        return 0 if all(r["ok"] for o in res for r in o["runs"]) else 1
    key_modes = make_keys(work) if args.keys else []

    def best(fn, runs=None):
        """Run fn() args.repeat times: the fastest run, with the worst RSS and tmp."""
        if runs is None:
            runs = [fn() for _ in range(max(1, args.repeat))]
        pick = lambda x: x[0] if isinstance(x, tuple) else x
        ok = [x for x in runs if pick(x)["ok"]]
        chosen = min(ok, key=lambda x: pick(x)["secs"]) if ok else runs[0]
        r = dict(pick(chosen))
        r["rss"] = max(pick(x)["rss"] for x in runs)
        r["tmp"] = max(pick(x)["tmp"] for x in runs)
        r["all_secs"] = [round(pick(x)["secs"], 2) for x in runs]
        r["all_cpu"] = [round(pick(x).get("cpu", 0.0), 2) for x in runs]
        r["load"] = os.getloadavg()[0]
        r["ok"] = all(pick(x)["ok"] for x in runs)
        return (r, chosen[1]) if isinstance(chosen, tuple) else r

    def group(fns):
        """Yield best() of each of `fns`, in order. Without --compare-bin each runs its N
        times in a row, as always; with it the group alternates: round i runs every fn
        once, in reverse order on odd rounds (A B C, C B A, ...)."""
        if not label:
            yield from (best(fn) for fn in fns)
            return
        runs = [[] for _ in fns]
        for i in range(max(1, args.repeat)):
            order = list(range(len(fns)))
            for k in (order if i % 2 == 0 else order[::-1]):
                runs[k].append(fns[k]())
        yield from (best(None, rs) for rs in runs)

    def record(r, gib, op, tool, nbytes):
        r.update(size_gib=gib, op=op, tool=tool, bytes=nbytes)
        results.append(r)
        mbs = nbytes / 1e6 / r["secs"] if r["secs"] else 0
        print(f"[{gib:g} GiB] {op} {tool}: {r['secs']:.1f}s {mbs:.1f} MB/s "
              f"rss {r['rss'] / MiB:.1f}Mi{'' if r['ok'] else ' FAILED'}", file=sys.stderr)

    for gib in sizes:
        data = work / f"data-{gib:g}g"
        t0 = time.monotonic()
        made = brss.generate(data, int(gib * GiB), args.seed)
        nbytes = brss.dataset_bytes(data)
        print(f"[{gib:g} GiB] dataset {'generated' if made else 'reused'} "
              f"({nbytes / 1e6:.0f} MB) in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        if args.keys_rounds:
            modes = [m for m in make_keys(work) if m[0] in ("pub", "age")]
            results += keys_rounds(binary, args.keys_comp.split(","), args.keys_rounds, data,
                                   nbytes, work, keyfile, args.threads, modes, gib)
            if not args.keep:
                shutil.rmtree(data, ignore_errors=True)
            continue
        store = fresh_dir(work / "store")
        archives = {}
        # Each lifeboat run sits next to its baselines, so a change in the machine's
        # other load shifts both rather than one side of a ratio.
        # With --compare-bin, the other binary's runs join each group as its own rows.
        bins = [(binary, None)] + ([(old_bin, label)] if label else [])
        sfx = lambda lb: f"@{lb}" if lb else ""
        for comp, kinds in (("gzip", ("tar-gzip", "tar-pigz")), ("zstd", ("tar-zstd",))):
            if args.restore_only:
                _, archives[comp] = run_lb_backup(binary, comp, data, work, keyfile, store,
                                                  args.threads)
                continue
            fns = [lambda b=b, lb=lb: run_lb_backup(b, comp, data, work, keyfile, store,
                                                    args.threads, label=lb)
                   for b, lb in bins]
            fns += [lambda kind=kind: run_shell_backup(kind, data, work, keyfile)
                    for kind in kinds]
            tools = [f"lb-{comp}{sfx(lb)}" for _, lb in bins] + list(kinds)
            for tool, got in zip(tools, group(fns)):
                if tool.startswith("lb-"):
                    got, arch = got
                    # Every restore reads the current binary's archive (else the old one's).
                    archives[comp] = archives.get(comp) or arch
                record(got, gib, "backup", tool, nbytes)
        for mode in key_modes if not args.restore_only else []:
            # Each mode right after a passphrase run of its own: the ratio is same-moment.
            r, _ = best(lambda: run_lb_backup(binary, "zstd", data, work, keyfile, store,
                                              args.threads))
            record(r, gib, "backup", "lb-zstd", nbytes)
            r, _ = best(lambda: run_lb_backup(binary, "zstd", data, work, keyfile, store,
                                              args.threads, keys=mode))
            record(r, gib, "backup", f"lb-zstd-{mode[0]}", nbytes)
        if s3 and not args.restore_only:
            for comp in ("gzip", "zstd"):
                s3store = fresh_dir(work / "store-s3")
                fns = [lambda b=b, lb=lb: run_lb_backup(b, comp, data, work, keyfile, s3store,
                                                        args.threads, s3, label=lb)
                       for b, lb in bins]
                for (_, lb), (r, _) in zip(bins, group(fns)):
                    record(r, gib, "backup", f"lb-{comp}+s3{sfx(lb)}", nbytes)
                shutil.rmtree(s3store, ignore_errors=True)
        for comp in ("gzip", "zstd"):
            if not archives[comp]:
                continue
            arch = archives[comp]
            fns = [lambda b=b, lb=lb: run_lb_restore(b, arch, work, keyfile, store, lb)
                   for b, lb in bins]
            fns.append(lambda: run_shell_restore(arch, comp, work, keyfile))
            tools = [f"lb-{comp}{sfx(lb)}" for _, lb in bins] + [f"gpg|tar-{comp}"]
            for tool, r in zip(tools, group(fns)):
                record(r, gib, "restore", tool, nbytes)
        shutil.rmtree(store, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)

    if args.keys_rounds:
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return 0
    print()
    print_table(results, sizes, label)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
