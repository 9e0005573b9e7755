"""BACKUP_STOP_SERVICES and restore against a real engine: a Compose stack with the sidecar.

Every claim is checked from the engine's own state (a container's StartedAt / FinishedAt /
Running), not from lifeboat's logs: a stopped-and-started container has FinishedAt and a
new StartedAt inside the run's window; one never touched keeps its StartedAt.
"""

import calendar
import json
import os
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from conftest import docker, need_engine

STACK = Path(__file__).resolve().parent / "stack"


def ts(s):
    """Docker's RFC 3339 nanosecond time as a float (UTC)."""
    if s.startswith("0001-"):
        return 0.0
    base, _, frac = s.rstrip("Z").partition(".")
    t = calendar.timegm(datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").timetuple())
    return t + (float("0." + frac) if frac else 0.0)


def state(cid):
    st = json.loads(docker("inspect", cid).stdout)[0]["State"]
    return {"running": st["Running"], "started": ts(st["StartedAt"]),
            "finished": ts(st["FinishedAt"]), "status": st["Status"]}


class Stack:
    def __init__(self, image, tmp_path):
        self.project = f"lbe2e{uuid.uuid4().hex[:8]}"
        self.named = f"{self.project}-named"
        self.backups = tmp_path / "backups"
        self.backups.mkdir()
        self.env = {**os.environ, "LIFEBOAT_IMAGE": image, "LB_NAMED": self.named,
                    "LB_BACKUPS": str(self.backups)}

    def compose(self, *args, check=True, timeout=600):
        p = subprocess.run(["docker-compose", "-p", self.project, "-f",
                            str(STACK / "docker-compose.yml"), *args],
                           capture_output=True, text=True, env=self.env, timeout=timeout)
        if check:
            assert p.returncode == 0, f"docker-compose {args} failed:\n{p.stderr}"
        return p

    def cid(self, service):
        return self.compose("ps", "-q", service).stdout.strip()

    def exec_args(self, *cmd, env=None):
        args = ["docker", "exec"]
        for k, v in (env or {}).items():
            args += ["-e", f"{k}={v}"]
        return args + [self.cid("backup"), *cmd]

    def lifeboat(self, *cmd, env=None, timeout=300):
        return subprocess.run(self.exec_args("lifeboat", *cmd, env=env), capture_output=True,
                              text=True, timeout=timeout)

    def sh(self, script):
        return docker("exec", self.cid("backup"), "sh", "-c", script)

    def archives(self):
        d = self.backups / "e2e"
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


@pytest.fixture
def stack(image, tmp_path):
    s = Stack(image, tmp_path)
    s.compose("up", "-d", "--build")
    # (was: 10 s of polling, then on regardless)
    services = ("app", "other", "backup")
    assert wait_for(lambda: all(state(s.cid(x))["running"] for x in services)), \
        "the stack did not come up"
    yield s
    s.compose("down", "-v", "-t", "2", check=False)


def wait_for(pred, timeout=300, step=0.1):
    """Poll pred; the deadline is a hang guard for a loaded machine, never a measure."""
    end = time.monotonic() + timeout
    while True:
        expired = time.monotonic() >= end
        if pred():
            return True
        if expired:
            return False
        time.sleep(step)


def assert_stopped_and_started(before, after, t0, t1):
    assert after["running"], after
    assert t0 - 1 <= after["finished"] <= t1 + 1, (before, after, t0, t1)
    assert after["started"] > before["started"] and after["started"] >= after["finished"]


def assert_untouched(before, after):
    assert after["running"] and after["started"] == before["started"], (before, after)


def test_backup_stops_and_restarts_a_compose_service(stack):
    app, other = stack.cid("app"), stack.named
    b_app, b_other = state(app), state(other)
    t0 = time.time()
    p = stack.lifeboat("backup", env={"BACKUP_STOP_SERVICES": "app", "BACKUP_STOP_WAIT": "1",
                                      "BACKUP_START_WAIT": "1"})
    t1 = time.time()
    assert p.returncode == 0, p.stderr
    assert_stopped_and_started(b_app, state(app), t0, t1)
    assert_untouched(b_other, state(other))
    assert t1 - t0 >= 2  # both waits were honoured
    assert "stopping container" in p.stderr and "started container" in p.stderr
    # the app really ran again: it writes its ticks after the backup
    n = len(stack.sh("cat /data/ticks").stdout.splitlines())
    assert wait_for(lambda: len(stack.sh("cat /data/ticks").stdout.splitlines()) > n)
    # the app stopped gracefully (its SIGTERM trap ran): the engine used its own timeout
    assert "stop " in stack.sh("cat /data/events").stdout
    # nothing left to recover
    assert stack.sh("ls /var/lib/lifeboat").stdout.count("stopped") == 0


def test_backup_stops_a_container_by_container_name(stack):
    app, other = stack.cid("app"), stack.named
    b_app, b_other = state(app), state(other)
    t0 = time.time()
    p = stack.lifeboat("backup", env={"BACKUP_STOP_SERVICES": other})
    t1 = time.time()
    assert p.returncode == 0, p.stderr
    assert_stopped_and_started(b_other, state(other), t0, t1)
    assert_untouched(b_app, state(app))


def test_unknown_name_is_an_error_before_anything_stops(stack):
    app = stack.cid("app")
    b_app = state(app)
    p = stack.lifeboat("backup", env={"BACKUP_STOP_SERVICES": "app,no-such-service"})
    assert p.returncode == 3, p.stderr
    errors = [ln for ln in p.stderr.splitlines() if "no-such-service" in ln]
    assert len(errors) == 1 and "nothing was stopped" in errors[0], p.stderr
    assert_untouched(b_app, state(app))
    assert stack.archives() == []


def test_the_sidecar_never_stops_itself(stack):
    app, backup = stack.cid("app"), stack.cid("backup")
    b_app, b_backup = state(app), state(backup)
    t0 = time.time()
    p = stack.lifeboat("backup", env={"BACKUP_STOP_SERVICES": "backup,app"})
    t1 = time.time()
    assert p.returncode == 0, p.stderr
    assert "lifeboat's own container: not stopping it" in p.stderr
    assert_untouched(b_backup, state(backup))
    assert_stopped_and_started(b_app, state(app), t0, t1)


def test_failing_source_restarts_the_service(stack):
    app = stack.cid("app")
    b_app = state(app)
    # A second source that cannot be read (the sidecar has no DAC_OVERRIDE).
    stack.sh("mkdir -p /tmp/bad && echo x >/tmp/bad/f && chmod 000 /tmp/bad/f")
    t0 = time.time()
    p = stack.lifeboat("backup", env={"BACKUP_STOP_SERVICES": "app",
                                      "BACKUP_DIRS": "/data:app-data,/tmp/bad:bad"})
    t1 = time.time()
    assert p.returncode == 4, p.stderr
    assert "Permission denied" in p.stderr
    assert_stopped_and_started(b_app, state(app), t0, t1)
    assert stack.archives() == []


S3_CLOSED = {"BACKUP_S3_BUCKET": "lifeboat-e2e", "BACKUP_S3_ENDPOINT": "http://127.0.0.1:9",
             "BACKUP_S3_ACCESS_KEY": "AKIDEXAMPLE", "BACKUP_S3_SECRET_KEY": "x" * 40}


def test_failing_s3_store_restarts_the_service(stack):
    app = stack.cid("app")
    b_app = state(app)
    t0 = time.time()
    p = stack.lifeboat("backup", env={"BACKUP_STOP_SERVICES": "app", **S3_CLOSED})
    t1 = time.time()
    assert p.returncode == 5, p.stderr  # the local copy was kept, the S3 one failed
    assert_stopped_and_started(b_app, state(app), t0, t1)
    assert len(stack.archives()) == 1


def test_s3_only_failing_at_start_never_stops(stack):
    app = stack.cid("app")
    b_app = state(app)
    p = stack.lifeboat("backup", env={"BACKUP_STOP_SERVICES": "app", "BACKUP_LOCAL_PATH": "",
                                      **S3_CLOSED})
    assert p.returncode == 5, p.stderr
    assert_untouched(b_app, state(app))


def big_source(stack, mb=16):
    """A run that stops the app and then stays in the middle, whatever the machine's
    speed: BACKUP_STOP_WAIT holds it (interruptibly) after the stop, before anything is
    read, until the test signals or kills it."""
    stack.sh(f"mkdir -p /tmp/big && head -c {mb * 1024 * 1024} /dev/urandom >/tmp/big/blob")
    return {"BACKUP_STOP_SERVICES": "app", "BACKUP_DIRS": "/data:app-data,/tmp/big:big",
            "BACKUP_STOP_WAIT": "3600"}


def test_sigterm_mid_run_restarts_the_service(stack):
    app = stack.cid("app")
    b_app = state(app)
    env = big_source(stack)
    t0 = time.time()
    run = subprocess.Popen(stack.exec_args("lifeboat", "backup", env=env),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: not state(app)["running"]), "the app was never stopped"
        stack.sh("kill -TERM $(cat /var/lib/lifeboat/e2e.lock)")
        out, err = run.communicate(timeout=300)
    finally:
        run.kill()
    t1 = time.time()
    assert run.returncode == 130, err
    assert "interrupted" in err
    assert_stopped_and_started(b_app, state(app), t0, t1)
    assert stack.archives() == []


def test_sigkill_then_sidecar_restart_recovers(stack):
    app, backup = stack.cid("app"), stack.cid("backup")
    env = big_source(stack)
    run = subprocess.Popen(stack.exec_args("lifeboat", "backup", env=env),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: not state(app)["running"]), "the app was never stopped"
        docker("kill", "-s", "KILL", backup)
        run.communicate(timeout=300)
    finally:
        run.kill()
    # Nothing to poll for (nothing should happen): a short look that the app stays down.
    time.sleep(1)
    assert not state(app)["running"], "the app came back without lifeboat"
    docker("start", backup)
    assert wait_for(lambda: state(app)["running"]), "the restarted sidecar left app down"
    logs = docker("logs", backup).stderr
    assert "was killed while containers were stopped" in logs
    assert "started container" in logs
    # the record is gone, so the next start does not touch the app again
    assert wait_for(lambda: "stopped" not in stack.sh("ls /var/lib/lifeboat").stdout)


def test_sigkill_then_manual_backup_recovers(stack):
    app = stack.cid("app")
    env = big_source(stack)
    run = subprocess.Popen(stack.exec_args("lifeboat", "backup", env=env),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: not state(app)["running"]), "the app was never stopped"
        # Kill only the backup process, not the daemon (PID 1).
        stack.sh("kill -KILL $(cat /var/lib/lifeboat/e2e.lock)")
        run.communicate(timeout=300)
    finally:
        run.kill()
    down = state(app)
    assert not down["running"]
    t0 = time.time()
    p = stack.lifeboat("backup")  # without BACKUP_STOP_SERVICES: it stops nothing itself
    t1 = time.time()
    assert p.returncode == 0, p.stderr
    assert "was killed while containers were stopped" in p.stderr
    # The engine saw the app start again during this run, after the killed run stopped it:
    # only the recovery can have started it (the stack has no restart policy).
    up = state(app)
    assert up["running"], (down, up)
    assert down["finished"] <= up["started"] and t0 - 1 <= up["started"] <= t1 + 1, \
        (down, up, t0, t1)
    # The record is gone, so the next start does not touch the app again.
    assert "stopped" not in stack.sh("ls /var/lib/lifeboat").stdout
    # The run then made a whole backup: the killed run's .partial file is gone and the one
    # archive left holds the app's data.
    stamp = p.stdout.strip()
    names = stack.archives()
    assert len(names) == 1 and stamp in names[0], names
    with tarfile.open(stack.backups / "e2e" / names[0], "r:*") as t:
        members = [os.path.normpath(n) for n in t.getnames()]
    assert "dirs/app-data/ticks" in members, members


def test_a_recorded_container_removed_meanwhile_is_dropped(stack):
    app = stack.cid("app")
    env = big_source(stack)
    run = subprocess.Popen(stack.exec_args("lifeboat", "backup", env=env),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: not state(app)["running"]), "the app was never stopped"
        stack.sh("kill -KILL $(cat /var/lib/lifeboat/e2e.lock)")
        run.communicate(timeout=300)
    finally:
        run.kill()
    docker("rm", "-f", app)
    p = stack.lifeboat("backup")
    assert p.returncode == 0, p.stderr
    assert "no longer exists: not starting it again" in p.stderr
    assert "stopped" not in stack.sh("ls /var/lib/lifeboat").stdout


def test_restore_stops_the_project_and_starts_it_again(stack):
    app, other, backup = stack.cid("app"), stack.named, stack.cid("backup")
    p = stack.lifeboat("backup")
    assert p.returncode == 0, p.stderr
    stamp = p.stdout.strip()
    stack.sh("echo wrecked >/data/ticks")
    b_app, b_other, b_backup = state(app), state(other), state(backup)
    t0 = time.time()
    p = stack.lifeboat("restore", stamp, "--yes")
    t1 = time.time()
    assert p.returncode == 0, p.stderr
    assert_stopped_and_started(b_app, state(app), t0, t1)
    assert_stopped_and_started(b_other, state(other), t0, t1)
    assert_untouched(b_backup, state(backup))
    assert "wrecked" not in stack.sh("head -c 100 /data/ticks").stdout
    # dependencies first: app starts before 'other' (which depends_on app)
    assert state(app)["started"] <= state(other)["started"]


def test_restore_of_a_damaged_archive_stops_nothing(stack):
    app = stack.cid("app")
    p = stack.lifeboat("backup")
    assert p.returncode == 0, p.stderr
    stamp = p.stdout.strip()
    name = stack.archives()[0]
    path = stack.backups / "e2e" / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    b_app = state(app)
    p = stack.lifeboat("restore", stamp, "--yes")
    assert p.returncode != 0
    assert_untouched(b_app, state(app))


def plain_run(image, tmp_path, *cmd, env=None, socket=False):
    data, backups = tmp_path / "pdata", tmp_path / "pbackups"
    data.mkdir(exist_ok=True)
    backups.mkdir(exist_ok=True)
    (data / "f").write_text("x\n")
    args = ["run", "--rm", "-v", f"{data}:/data", "-v", f"{backups}:/backups"]
    if socket:
        args += ["-v", "/var/run/docker.sock:/var/run/docker.sock:ro"]
    for k, v in {"BACKUP_NAME": "plain", "BACKUP_LOCAL_PATH": "/backups",
                 "BACKUP_ENCRYPTION": "none", "BACKUP_DIRS": "/data:data",
                 **(env or {})}.items():
        args += ["-e", f"{k}={v}"]
    return docker(*args, image, *cmd, check=False)


def test_missing_socket_says_how_to_mount_it(image, tmp_path):
    p = plain_run(image, tmp_path, "backup", env={"BACKUP_STOP_SERVICES": "app"})
    assert p.returncode == 3, p.stderr
    assert "- /var/run/docker.sock:/var/run/docker.sock:ro" in p.stderr
    assert not (tmp_path / "pbackups" / "plain").exists() or \
        not list((tmp_path / "pbackups" / "plain").iterdir())


def test_restore_without_socket_or_compose_stops_nothing(image, tmp_path):
    p = plain_run(image, tmp_path, "backup")
    assert p.returncode == 0, p.stderr
    stamp = p.stdout.strip()
    p = plain_run(image, tmp_path, "restore", stamp, "--yes")
    assert p.returncode == 0, p.stderr
    assert "restoring without stopping containers" in p.stderr
    p = plain_run(image, tmp_path, "restore", stamp, "--yes", socket=True)
    assert p.returncode == 0, p.stderr
    assert "restoring without stopping containers" in p.stderr
    assert "Compose project" in p.stderr


@pytest.fixture
def swarm(image):
    info = json.loads(docker("info", "--format", "{{json .Swarm}}").stdout)
    joined = info.get("LocalNodeState") == "active"
    if not joined:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    docker("build", "-q", "-t", "lifeboat-e2e-app:latest", str(STACK / "app"))
    name = f"lbe2e-swarm-{uuid.uuid4().hex[:8]}"
    docker("service", "create", "-d", "--no-resolve-image", "--name", name, "--replicas",
           "1", "--stop-grace-period", "5s", "lifeboat-e2e-app:latest")
    yield name
    docker("service", "rm", name, check=False)
    if not joined:
        docker("swarm", "leave", "--force", check=False)


def swarm_tasks(name):
    out = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}").stdout
    return out.split()


def test_swarm_service_is_scaled_to_zero_and_back(image, tmp_path, swarm):
    assert wait_for(lambda: len(swarm_tasks(swarm)) == 1), "the service never ran"
    first = swarm_tasks(swarm)[0]
    since = str(int(time.time()))
    p = plain_run(image, tmp_path, "backup", socket=True,
                  env={"BACKUP_STOP_SERVICES": swarm, "BACKUP_STOP_WAIT": "0",
                       "BACKUP_START_WAIT": "0"})
    until = str(int(time.time()) + 1)
    assert p.returncode == 0, p.stderr
    assert "scaling Swarm service" in p.stderr
    spec = json.loads(docker("service", "inspect", swarm).stdout)[0]["Spec"]
    assert spec["Mode"]["Replicated"]["Replicas"] == 1
    # The engine's events: the service was updated twice (to 0, back to 1) during the run.
    ev = docker("events", "--since", since, "--until", until, "--format", "{{json .}}",
                "--filter", "type=service", "--filter", f"service={swarm}").stdout
    updates = [json.loads(line) for line in ev.splitlines() if '"update"' in line]
    assert len(updates) >= 2, ev
    # the old task was stopped (and, scaled away, removed by the engine)
    old = docker("inspect", first, check=False)
    assert old.returncode != 0 or not json.loads(old.stdout)[0]["State"]["Running"]
    assert wait_for(lambda: len(swarm_tasks(swarm)) == 1), "the service did not come back"
    assert swarm_tasks(swarm)[0] != first


# ---- the host binary (ASan+UBSan build) against the engine, also through DOCKER_HOST=tcp ----

def host_bin():
    env = os.environ.get("LIFEBOAT_HOST_BIN")
    if env:
        return Path(env)
    for b in ("build-asan", "build"):
        p = Path(__file__).resolve().parents[2] / b / "lifeboat"
        if p.exists():
            return p
    pytest.fail("build/lifeboat is not built")


class TcpToUnix:
    """A minimal socket proxy: tcp://127.0.0.1:PORT to /var/run/docker.sock."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.connections += 1
            u = socket.socket(socket.AF_UNIX)
            u.connect("/var/run/docker.sock")
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    b.shutdown(socket.SHUT_WR)
                    return
                b.sendall(d)
        except OSError:
            return

    def close(self):
        self.srv.close()


@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_host_binary_stops_a_container_by_name(image, tmp_path, via):
    need_engine()
    name = f"lbe2e-host-{uuid.uuid4().hex[:8]}"
    docker("build", "-q", "-t", "lifeboat-e2e-app:latest", str(STACK / "app"))
    docker("run", "-d", "--name", name, "lifeboat-e2e-app:latest")
    proxy = TcpToUnix() if via == "tcp" else None
    try:
        assert wait_for(lambda: state(name)["running"])
        before = state(name)
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "f").write_text("x\n")
        (tmp_path / "backups").mkdir()
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "BACKUP_NAME": "host",
               "BACKUP_LOCAL_PATH": str(tmp_path / "backups"), "BACKUP_ENCRYPTION": "none",
               "BACKUP_DIRS": f"{tmp_path / 'data'}:data", "BACKUP_STATE_DIR": str(tmp_path / "st"),
               "BACKUP_LOG_FILE": str(tmp_path / "log"), "BACKUP_STOP_SERVICES": name,
               "BACKUP_STOP_WAIT": "0", "BACKUP_START_WAIT": "0",
               "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "halt_on_error=1"}
        if proxy:
            env["DOCKER_HOST"] = f"tcp://127.0.0.1:{proxy.port}"
        t0 = time.time()
        p = subprocess.run([str(host_bin()), "backup"], env=env, capture_output=True,
                           text=True, timeout=300)
        t1 = time.time()
        assert p.returncode == 0, p.stderr
        assert_stopped_and_started(before, state(name), t0, t1)
        assert not (tmp_path / "st" / "host.stopped.json").exists()
        if proxy:
            assert proxy.connections >= 1
        # a wrong DOCKER_HOST is one clear line, and nothing is stopped
        before = state(name)
        env["DOCKER_HOST"] = "tcp://127.0.0.1:9"
        p = subprocess.run([str(host_bin()), "backup"], env=env, capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 3, p.stderr
        assert "BACKUP_STOP_SERVICES needs the Docker engine" in p.stderr
        assert_untouched(before, state(name))
    finally:
        if proxy:
            proxy.close()
        docker("rm", "-f", name, check=False)
