"""The daemon (issue 6): schedule, retention, webhooks, lock, status, metrics, signals.

Waits are polls on the event itself with a hang guard of minutes (waiting.py), never
sleeps or tight timing asserts: the machine may be loaded. Network is 127.0.0.1 only.
"""

import fcntl
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from conftest import EXIT_CONFIG, EXIT_OK, need_root, need_tool, non_dir_entries
from waiting import HANG, file_contains, wait_until

EXIT_BUSY = 9
EXIT_INTERRUPTED = 130


def archives(lb):
    if not lb.backup_dir.exists():
        return []
    return sorted(p.name for p in lb.backup_dir.iterdir()
                  if p.name.startswith(lb.NAME + "-") and not p.name.startswith("."))


def partials(lb):
    if not lb.backup_dir.exists():
        return []
    return [p.name for p in lb.backup_dir.iterdir() if p.name.endswith(".partial")]


def stop(proc, sig=signal.SIGTERM, timeout=HANG):
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"daemon did not exit within {timeout}s of signal {sig}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def state(lb):
    p = lb.tmp / "state" / f"{lb.NAME}.state.json"
    return json.loads(p.read_text()) if p.exists() else {}


def old_name(lb, days_ago, suffix=".tar.gz.gpg"):
    t = datetime.now(timezone.utc) - timedelta(days=days_ago)
    return f"{lb.NAME}-{t.strftime('%Y-%m-%d-%H%M%S')}{suffix}"


def plant_archives(lb, days):
    """Fake archives of this name at given ages (only names matter to retention)."""
    lb.backup_dir.mkdir(parents=True, exist_ok=True)
    names = {}
    for d in days:
        n = old_name(lb, d)
        (lb.backup_dir / n).write_bytes(b"old archive %d\n" % d)
        names[d] = n
    return names


def plant_foreign(lb):
    """Files retention must never touch, however old they look."""
    lb.backup_dir.mkdir(parents=True, exist_ok=True)
    foreign = [
        f"{lb.NAME}2-2001-01-01-000000.tar.gz.gpg",      # another name sharing a prefix
        f"other-2001-01-01-000000.tar.gz.gpg",
        f"{lb.NAME}-2001-01-01-000000.tar.gz.gpg.bak",   # not our suffix
        f"{lb.NAME}-2001-13-01-000000.tar.gz.gpg",       # not a valid timestamp
        "notes.txt",
    ]
    for n in foreign:
        (lb.backup_dir / n).write_bytes(b"keep me\n")
    return foreign


# --------------------------------------------------------------------------
# a local webhook receiver
# --------------------------------------------------------------------------

class Hooks:
    def __init__(self, status=200):
        self.requests = []
        self.status = status
        hooks = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hooks.requests.append((self.path, self.headers.get("Content-Type"), body))
                self.send_response(hooks.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path):
        return [json.loads(b) for p, _, b in self.requests if p == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    h = Hooks()
    yield h
    h.close()


TOKEN = "0f1e2d3c-secret-token-4b5a"


def hook_env(hooks):
    return {
        "BACKUP_START_WEBHOOK": hooks.url(f"/{TOKEN}/start"),
        "BACKUP_SUCCESS_WEBHOOK": hooks.url(f"/{TOKEN}"),
        "BACKUP_FAILURE_WEBHOOK": hooks.url(f"/{TOKEN}/fail"),
    }


# --------------------------------------------------------------------------
# the schedule
# --------------------------------------------------------------------------

def test_schedule_runs_backups_then_sigterm(lb):
    proc = lb.popen(["run"], {"BACKUP_SCHEDULE": "*/3 * * * * *"},
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(archives(lb)) >= 3, "three scheduled backups")
    finally:
        rc = stop(proc)
    err = proc.stderr.read().decode(errors="replace")
    assert rc in (EXIT_OK, EXIT_INTERRUPTED), err
    assert partials(lb) == []
    names = archives(lb)
    assert len(names) >= 3
    # Seconds field: runs come seconds apart, not minutes. The timing is the point here,
    # so it is asserted with the slack a loaded machine needs: a run may start late or
    # take long (then the next one waits for a later multiple of 3 s), but some two
    # consecutive runs are less than a minute apart, which a schedule read as minutes
    # (every 3 min, or every minute) can never produce.
    times = [datetime.strptime(n[len(lb.NAME) + 1:len(lb.NAME) + 18], "%Y-%m-%d-%H%M%S")
             for n in names]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    assert min(gaps) < 60, names
    # The newest complete archive restores its content intact.
    res = lb.run(["verify", names[-1][len(lb.NAME) + 1:len(lb.NAME) + 18]])
    assert res.returncode == 0
    st = state(lb)
    assert st["last_scheduled"]["status"] in ("success", "interrupted")
    assert st["runs_success"] >= 3
    assert lb.passphrase not in err


def test_idle_manual_mode_exits_at_once_and_allows_backup(lb):
    proc = lb.popen(["run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Up: manual mode records "no next run" in the state file.
        wait_until(lambda: state(lb).get("next_run") == 0, "the daemon's state file")
        ts = lb.backup()
        assert archives(lb) == [f"{lb.NAME}-{ts}.tar.gz.gpg"]
        assert proc.poll() is None
    finally:
        # "At once": idle, nothing is in progress to finish, so the daemon goes as soon
        # as it sees the signal. Not a measured time (a loaded machine may take seconds):
        # a daemon that only noticed at some later tick (minutes, or never) hangs here.
        rc = stop(proc, signal.SIGINT, timeout=60)
    assert rc == EXIT_OK
    err = proc.stderr.read().decode(errors="replace")
    assert "stopping (signal 2)" in err, err


@pytest.mark.slow
def test_sigterm_during_scheduled_run_leaves_nothing(lb):
    big = lb.src / "big" / "huge.bin"
    with open(big, "wb") as f:
        for _ in range(24):
            f.write(os.urandom(4 << 20))
    proc = lb.popen(["run"], {"BACKUP_SCHEDULE": "* * * * * *"},
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: partials(lb), "a backup in progress", interval=0.01)
    finally:
        rc = stop(proc)
    assert rc == EXIT_INTERRUPTED, proc.stderr.read().decode(errors="replace")
    assert non_dir_entries(lb.backup_dir) == []
    assert state(lb)["last"]["status"] == "interrupted"


def zombie_children(pid):
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z" and int(fields[1]) == pid:
            out.add(int(d))
    return out


def test_pid1_reaps_orphans(lb):
    """As PID 1 (a new PID namespace) orphans such as gpg-agent become ours: no zombie stays."""
    need_root("a PID namespace")
    unshare = need_tool("unshare")
    # A TMPDIR of its own (short: gpg needs short socket paths). In the new namespace
    # every other lifeboat's pid looks dead, so clearing "stale" lbgpg.PID.* homedirs in
    # the shared /tmp would remove the live ones of runs going on beside this test.
    tmpdir = tempfile.mkdtemp(prefix="lbns", dir="/tmp")
    proc = subprocess.Popen([unshare, "--pid", "--fork", lb.bin, "run"],
                            env=lb.env({"BACKUP_SCHEDULE": "*/2 * * * * *", "TMPDIR": tmpdir}),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=str(lb.tmp))
    daemon = None
    try:
        daemon = wait_until(lambda: next(iter(
            open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()), None),
            "the daemon inside the namespace")
        daemon = int(daemon)
        wait_until(lambda: len(archives(lb)) >= 2, "two scheduled backups")
        # Every zombie seen now is reaped (a new one may come and go meanwhile; one that
        # stays for minutes is the bug).
        first = zombie_children(daemon)
        wait_until(lambda: not first & zombie_children(daemon),
                   f"the zombies {sorted(first)} to be reaped", interval=0.2)
    finally:
        if daemon:
            os.kill(daemon, signal.SIGTERM)
        try:
            proc.wait(timeout=HANG)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmpdir, ignore_errors=True)
    assert partials(lb) == []


def test_bad_schedule_exit_3_names_variable(lb):
    for bad in ("0 25 * * *", "every day", "* * * *", "0 0 31 2 *", "@reboot"):
        res = lb.run(["run"], {"BACKUP_SCHEDULE": bad}, check=EXIT_CONFIG, timeout=HANG)
        assert "BACKUP_SCHEDULE" in res.stderr
        assert archives(lb) == []


def test_bad_config_found_at_start(lb):
    res = lb.run(["run"], {"BACKUP_DIRS": f"{lb.tmp}/missing:x", "BACKUP_SCHEDULE": "@daily"},
                 check=EXIT_CONFIG, timeout=HANG)
    assert "BACKUP_DIRS" in res.stderr
    # A file's directory must exist too (a volume that is not mounted).
    res = lb.run(["run"], {"BACKUP_FILES": f"{lb.tmp}/nodir/app.db:db",
                           "BACKUP_SCHEDULE": "@daily"}, check=EXIT_CONFIG, timeout=HANG)
    assert "BACKUP_FILES" in res.stderr


def test_file_created_later_by_the_app_is_a_warning_at_start(lb):
    """The sidecar may start before the application has created its database file: the
    daemon starts (with a warning), and backs it up once it exists."""
    later = lb.tmp / "appdir" / "created-later.db"
    later.parent.mkdir()
    proc = lb.popen(["run"], {"BACKUP_FILES": f"{later}:later",
                              "BACKUP_SCHEDULE": "*/2 * * * * *"},
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Past the configuration check: the daemon records its first next run.
        wait_until(lambda: state(lb).get("next_run") or proc.poll() is not None,
                   "the daemon to start")
        assert proc.poll() is None, proc.stderr.read().decode()
        later.write_bytes(b"now it exists\n")
        wait_until(lambda: archives(lb), "a backup once the file existed", interval=0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=HANG)
    assert b"does not exist yet" in err


# --------------------------------------------------------------------------
# retention
# --------------------------------------------------------------------------

def test_retention_days_after_backup(lb):
    old = plant_archives(lb, [1, 5, 9, 11, 40, 400])
    foreign = plant_foreign(lb)
    env = {"BACKUP_RETENTION_DAYS": "10"}

    res = lb.run(["prune", "--dry-run"], env)
    assert sorted(l.split()[2] for l in res.stdout.splitlines()) == \
        sorted([old[11], old[40], old[400]])
    assert all((lb.backup_dir / n).exists() for n in old.values())

    ts = lb.backup(env)
    left = set(os.listdir(lb.backup_dir))
    assert left == {old[1], old[5], old[9], f"{lb.NAME}-{ts}.tar.gz.gpg", *foreign}


def test_retention_gfs_and_keep_last_prune(lb):
    old = plant_archives(lb, [0.5, 1.5, 2.5, 3.5, 10, 20, 50, 80])
    res = lb.run(["prune"], {"BACKUP_KEEP_LAST": "2"})
    assert set(archives(lb)) == {old[0.5], old[1.5]}
    assert len(res.stdout.splitlines()) == 6


def test_no_prune_after_failed_backup(lb):
    old = plant_archives(lb, [30, 60])
    subprocess.run(["rm", "-rf", str(lb.src)], check=True)
    res = lb.run(["backup"], {"BACKUP_RETENTION_DAYS": "1"}, check=False)
    assert res.returncode != 0
    assert set(archives(lb)) == set(old.values())


def test_prune_keeps_newest_even_if_old(lb):
    old = plant_archives(lb, [100, 200])
    lb.run(["prune"], {"BACKUP_RETENTION_DAYS": "1"})
    assert archives(lb) == [old[100]]


def test_prune_without_rules_deletes_nothing(lb):
    old = plant_archives(lb, [100, 200])
    lb.run(["prune"])
    assert set(archives(lb)) == set(old.values())


# --------------------------------------------------------------------------
# webhooks
# --------------------------------------------------------------------------

def test_webhooks_start_and_success(lb, hooks):
    ts = lb.backup(hook_env(hooks))
    archive = lb.archive(ts)
    start = hooks.bodies(f"/{TOKEN}/start")
    ok = hooks.bodies(f"/{TOKEN}")
    assert len(start) == 1 and len(ok) == 1 and hooks.bodies(f"/{TOKEN}/fail") == []
    assert [p for p, _, _ in hooks.requests] == [f"/{TOKEN}/start", f"/{TOKEN}"]
    assert all(ct == "application/json" for _, ct, _ in hooks.requests)
    assert start[0]["status"] == "start" and start[0]["name"] == lb.NAME
    assert start[0]["stores"] == ["local"]
    b = ok[0]
    assert b["status"] == "success"
    assert b["name"] == lb.NAME
    assert b["file"] == archive.name
    assert b["size"] == archive.stat().st_size
    assert b["stores"] == ["local"]
    assert b["error"] is None
    assert b["trigger"] == "manual"
    assert isinstance(b["duration"], (int, float)) and b["duration"] >= 0
    datetime.strptime(b["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert isinstance(b["log"], list) and b["log"]
    raw = b"".join(body for _, _, body in hooks.requests)
    assert lb.passphrase.encode() not in raw


def test_webhook_failure_in_scheduled_run(lb, hooks):
    # The 2 AM case: the configuration was valid at start, then a source vanished.
    proc = lb.popen(["run"], {"BACKUP_SCHEDULE": "*/2 * * * * *", **hook_env(hooks)},
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: hooks.bodies(f"/{TOKEN}"), "a success webhook")
        subprocess.run(["rm", "-rf", str(lb.src)], check=True)
        wait_until(lambda: hooks.bodies(f"/{TOKEN}/fail"), "a failure webhook")
    finally:
        stop(proc)
    err = proc.stderr.read().decode(errors="replace")
    ok = hooks.bodies(f"/{TOKEN}")[0]
    assert ok["status"] == "success" and ok["trigger"] == "scheduled"
    assert ok["file"] in archives(lb)
    fail = hooks.bodies(f"/{TOKEN}/fail")[0]
    assert fail["status"] == "failure"
    assert fail["trigger"] == "scheduled"
    assert fail["name"] == lb.NAME
    assert fail["file"] is None and fail["size"] == 0
    assert fail["stores"] == [], "a failed run stored its archive nowhere"
    assert fail["error"] and str(lb.src) in fail["error"]
    assert any(str(lb.src) in line for line in fail["log"])
    # Each run sent exactly one start before its outcome.
    paths = [p for p, _, _ in hooks.requests]
    assert paths[0] == f"/{TOKEN}/start"
    assert paths.count(f"/{TOKEN}/start") >= paths.count(f"/{TOKEN}") + \
        paths.count(f"/{TOKEN}/fail") - 1
    assert partials(lb) == []
    assert TOKEN not in err and lb.passphrase not in err


def test_webhook_errors_do_not_fail_backup(lb):
    bad = Hooks(status=500)
    try:
        port = free_port()  # nothing listens here
        env = {"BACKUP_START_WEBHOOK": f"http://127.0.0.1:{port}/{TOKEN}",
               "BACKUP_SUCCESS_WEBHOOK": bad.url(f"/{TOKEN}")}
        res = lb.run(["backup"], env, timeout=HANG)
        assert len(archives(lb)) == 1
        # 5xx is retried: three attempts.
        assert len(bad.bodies(f"/{TOKEN}")) == 3
        assert TOKEN not in res.stderr
        log = (lb.tmp / "backup.log").read_text()
        assert TOKEN not in log and lb.passphrase not in log
    finally:
        bad.close()


def test_webhook_url_is_a_secret(lb, hooks, tmp_path):
    f = tmp_path / "hook.url"
    f.write_text(hooks.url(f"/{TOKEN}") + "\n")
    lb.backup({"BACKUP_SUCCESS_WEBHOOK_FILE": f})
    assert len(hooks.bodies(f"/{TOKEN}")) == 1
    res = lb.run(["check"], {"BACKUP_SUCCESS_WEBHOOK_FILE": f})
    assert TOKEN not in res.stdout + res.stderr


# --------------------------------------------------------------------------
# the lock
# --------------------------------------------------------------------------

def hold_lock(lb):
    d = lb.tmp / "state"
    d.mkdir(exist_ok=True)
    f = open(d / f"{lb.NAME}.lock", "a+")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def test_lock_timeout_fails_clearly(lb):
    held = hold_lock(lb)
    try:
        res = lb.run(["backup"], {"BACKUP_LOCK_TIMEOUT": "1"}, check=EXIT_BUSY, timeout=HANG)
    finally:
        held.close()
    assert "BACKUP_LOCK_TIMEOUT" in res.stderr
    assert non_dir_entries(lb.store) == []


def test_second_backup_waits_for_the_first(lb):
    held = hold_lock(lb)
    try:
        proc = lb.popen(["backup"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # It found the lock taken and is waiting (its log says so), not gone or done.
        wait_until(lambda: file_contains(lb.tmp / "backup.log", "is in progress; waiting")()
                   or proc.poll() is not None, "the backup to wait for the lock")
        assert proc.poll() is None, "backup did not wait for the lock"
        assert non_dir_entries(lb.store) == []
    finally:
        held.close()
    out, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 0, err
    assert len(archives(lb)) == 1


def test_two_concurrent_backups_serialise(lb):
    procs = [lb.popen(["backup"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=2 * HANG) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    stamps = sorted(o[0].decode().strip() for o in outs)
    assert stamps[0] != stamps[1]
    assert archives(lb) == [f"{lb.NAME}-{s}.tar.gz.gpg" for s in stamps]
    assert state(lb)["runs_success"] == 2


def test_dead_holder_lock_is_free(lb):
    # A process that took the lock and was killed: flock is released by the kernel.
    holder = subprocess.Popen(
        ["python3", "-c",
         "import fcntl,sys,time; f=open(sys.argv[1],'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('locked', flush=True); time.sleep(600)",
         str(lb.tmp / "state" / f"{lb.NAME}.lock")],
        stdout=subprocess.PIPE)
    (lb.tmp / "state").mkdir(exist_ok=True)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        holder.kill()
        holder.wait()
        # The kernel freed the lock with the process: no wait at all is needed, so the
        # timeout only has to be longer than a loaded machine's scheduling delay.
        lb.backup({"BACKUP_LOCK_TIMEOUT": "60"})
    finally:
        if holder.poll() is None:
            holder.kill()


# --------------------------------------------------------------------------
# status and metrics
# --------------------------------------------------------------------------

def test_status_exit_codes(lb):
    res = lb.run(["status"])  # no state yet: healthy
    lb.backup()
    res = lb.run(["status"])
    assert res.returncode == 0

    # A scheduled run that failed makes the container unhealthy.
    proc = lb.popen(["run"], {"BACKUP_SCHEDULE": "*/2 * * * * *"},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: state(lb).get("last_scheduled", {}).get("status") == "success",
                   "a scheduled success")
        subprocess.run(["rm", "-rf", str(lb.src)], check=True)
        wait_until(lambda: state(lb).get("last_scheduled", {}).get("status") == "failure",
                   "a scheduled failure")
    finally:
        stop(proc)
    lb.run(["status"], {"BACKUP_SCHEDULE": "*/2 * * * * *"}, check=1)
    # Manual mode ignores the scheduled history.
    lb.run(["status"], check=0)


def test_status_overdue(lb):
    d = lb.tmp / "state"
    d.mkdir()
    (d / f"{lb.NAME}.state.json").write_text(json.dumps(
        {"next_run": int(time.time()) - 3600, "runs_success": 1}))
    lb.run(["status"], {"BACKUP_SCHEDULE": "@hourly"}, check=1)
    (d / f"{lb.NAME}.state.json").write_text(json.dumps(
        {"next_run": int(time.time()) + 3600}))
    lb.run(["status"], {"BACKUP_SCHEDULE": "@hourly"}, check=0)


def parse_prom(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        out[key] = float(value)
    return out


def test_metrics_endpoint(lb):
    port = free_port()
    proc = lb.popen(["run"], {"BACKUP_METRICS_ADDR": f"127.0.0.1:{port}"},
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def scrape(path="/metrics"):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                            timeout=HANG) as r:
                    return r.status, r.headers.get("Content-Type"), r.read().decode()
            except (OSError, urllib.error.URLError):
                return None
        first = wait_until(scrape, "the metrics endpoint")
        assert first[0] == 200 and first[1].startswith("text/plain")
        m = parse_prom(first[2])
        assert m[f'lifeboat_runs_total{{name="{lb.NAME}",outcome="success"}}'] == 0
        t0 = time.time()
        ts = lb.backup()
        t1 = time.time()
        m = parse_prom(scrape()[2])
        assert m[f'lifeboat_runs_total{{name="{lb.NAME}",outcome="success"}}'] == 1
        assert m[f'lifeboat_runs_total{{name="{lb.NAME}",outcome="failure"}}'] == 0
        assert m[f'lifeboat_last_size_bytes{{name="{lb.NAME}"}}'] == lb.archive(ts).stat().st_size
        # During the run (whole seconds: 1 s of slack either side), however long it took.
        assert t0 - 1 <= m[f'lifeboat_last_success_timestamp_seconds{{name="{lb.NAME}"}}'] \
            <= t1 + 1
        assert m[f'lifeboat_last_duration_seconds{{name="{lb.NAME}"}}'] >= 0
        # Per source: what each source held, counted from the tree itself.
        files = [os.path.join(d, n) for d, _, ns in os.walk(lb.src) for n in ns]
        regular = [f for f in files if os.path.isfile(f) and not os.path.islink(f)]
        assert m[f'lifeboat_source_files{{name="{lb.NAME}",source="data"}}'] == len(regular)
        assert m[f'lifeboat_source_bytes{{name="{lb.NAME}",source="data"}}'] == \
            sum(os.path.getsize(f) for f in regular)
        assert m[f'lifeboat_source_files{{name="{lb.NAME}",source="single"}}'] == 1
        assert m[f'lifeboat_source_bytes{{name="{lb.NAME}",source="single"}}'] == \
            lb.single.stat().st_size
        # Per store.
        assert t0 - 1 <= m[f'lifeboat_store_last_success_timestamp_seconds{{name="{lb.NAME}",'
                           f'store="local"}}'] <= t1 + 1
        assert m[f'lifeboat_store_failures_total{{name="{lb.NAME}",store="local"}}'] == 0
        h = scrape("/healthz")
        assert h[0] == 200 and h[2] == "ok\n"
    finally:
        stop(proc)


def test_log_file_and_unwritable_log(lb):
    lb.backup()
    log = (lb.tmp / "backup.log").read_text()
    assert len(log.splitlines()) >= 2
    assert lb.passphrase not in log
    res = lb.run(["backup"], {"BACKUP_LOG_FILE": "/proc/nonexistent/backup.log"})
    assert "/proc/nonexistent/backup.log" in res.stderr
    assert len(archives(lb)) == 2


# --------------------------------------------------------------------------
# the idle daemon (issue 18): lifeboat-sched, runs as children
# --------------------------------------------------------------------------

HEAVY_LIBS = ("libarchive", "libcurl", "libcrypto", "libmongoc", "libpq", "libmariadb",
              "libmicrohttpd", "libgnutls", "libzstd", "libsqlite3")


def proc_status_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    return out


def mapped_libs(pid):
    with open(f"/proc/{pid}/maps") as f:
        return {os.path.basename(line.split()[-1]) for line in f if ".so" in line}


def idle_daemon(lb, env_extra):
    """Start `lifeboat run` with a daily schedule and wait until it has recorded its next run
    (past its start-up, waiting); skip under a sanitizer, whose shadow memory is no figure."""
    proc = lb.popen(["run"], {"BACKUP_SCHEDULE": "0 3 * * *", **env_extra},
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until(lambda: state(lb).get("next_run") or proc.poll() is not None,
               "the daemon's next run in the state file")
    assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
    if any(lib.startswith(("libasan", "libubsan")) for lib in mapped_libs(proc.pid)):
        stop(proc)
        pytest.skip("a sanitizer build: its RSS is the sanitizer's")
    return proc


def test_idle_daemon_rss_files_only(lb):
    """Issue 18: `lifeboat run` waiting for its schedule (files only) is <= 6 MiB VmRSS: it
    has become lifeboat-sched, the same pid, which maps none of the heavy libraries."""
    proc = idle_daemon(lb, {})
    try:
        libs = mapped_libs(proc.pid)
        rss = proc_status_kib(proc.pid)
        assert rss["VmRSS"] <= 6 * 1024, rss
        assert not [lib for lib in libs if lib.startswith(HEAVY_LIBS)], sorted(libs)
    finally:
        assert stop(proc) == EXIT_OK


def test_idle_daemon_rss_with_metrics(lb):
    """With BACKUP_METRICS_ADDR the scheduler loads libmicrohttpd (dlopen) and serves
    /metrics from the state file; after a scrape it is still <= 6 MiB (about 4.6 here)."""
    port = free_port()
    proc = idle_daemon(lb, {"BACKUP_METRICS_ADDR": f"127.0.0.1:{port}"})
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=HANG) as r:
            body = r.read().decode()
        next_run = state(lb)["next_run"]
        assert f'lifeboat_next_run_timestamp_seconds{{name="{lb.NAME}"}} {next_run}' in body
        libs = mapped_libs(proc.pid)
        assert any(lib.startswith("libmicrohttpd") for lib in libs), sorted(libs)
        assert not [lib for lib in libs if lib.startswith(("libarchive", "libcurl", "libmongoc"))]
        rss = proc_status_kib(proc.pid)
        assert rss["VmRSS"] <= 6 * 1024, rss
    finally:
        assert stop(proc) == EXIT_OK


def test_metrics_port_taken_is_a_config_error_at_start(lb):
    """The full program binds BACKUP_METRICS_ADDR before it hands over: a taken port is
    still exit 3 at start, naming the variable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = lb.run(["run"], {"BACKUP_METRICS_ADDR": f"127.0.0.1:{port}",
                               "BACKUP_SCHEDULE": "@daily"}, check=EXIT_CONFIG, timeout=HANG)
    assert f"BACKUP_METRICS_ADDR '127.0.0.1:{port}': cannot listen there" in res.stderr


def test_scheduled_run_killed_outright_daemon_carries_on(lb):
    """A run is a child process now: when it is killed outright (here at its first file, as
    the OOM killer would), the daemon stays up, logs it, and the next run records the killed
    one as interrupted. Before, the run was the daemon itself, and it died with it."""
    proc = lb.popen(["run"], {"BACKUP_SCHEDULE": "*/2 * * * * *",
                              "LIFEBOAT_FAULT": "walk.before_open@1:kill"},
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Every run is killed the same way; the second one finds the first one's pid in
        # the state file and reports it.
        wait_until(lambda: state(lb).get("last_scheduled", {}).get("status") == "interrupted"
                   or proc.poll() is not None, "a killed run recorded as interrupted")
        assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
        assert state(lb)["runs_failure"] >= 1
        # Killed before anything was stored: no archive (its temporary is swept by the
        # first run that succeeds, as after any killed run).
        assert archives(lb) == []
    finally:
        rc = stop(proc)
    err = proc.stderr.read().decode(errors="replace")
    assert rc == EXIT_OK, err
    assert "the scheduled backup was killed by signal 9" in err


def test_sigterm_at_the_hand_over_is_not_lost(lb):
    """A SIGTERM that comes after `lifeboat run` checked for one and before it became
    lifeboat-sched stays pending across the exec (it is blocked there), so the daemon still
    stops at once. The fault point stops the process exactly there."""
    proc = lb.popen(["run"], {"LIFEBOAT_FAULT": "run.exec:stop"},
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def stopped():
            stat = open(f"/proc/{proc.pid}/stat").read()
            return stat[stat.rindex(")") + 2] == "T" or proc.poll() is not None
        wait_until(stopped, "lifeboat run stopped at the hand-over")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGCONT)
        rc = proc.wait(timeout=HANG)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode(errors="replace")
    assert rc == EXIT_OK, err
    assert "stopping (signal 15)" in err, err
