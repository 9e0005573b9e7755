"""Commands before and after a backup and the lifeboat.* labels against a real engine: a
command in a service's container through exec, label commands and lifeboat.stop, label
scoping (another project's labels are ignored), and the example stack's label whose marker
file the archive holds (the pre command ran before the read).

Outcomes are read from the archive, the containers' files and the engine's own container
state (StartedAt / FinishedAt), not from the log alone."""

import calendar
import os
import subprocess
import tarfile
import time
import uuid

import pytest

from conftest import REPO, docker
from test_services import (STACK, Stack, assert_stopped_and_started, assert_untouched, state,
                           wait_for)


class CommandStack(Stack):
    def __init__(self, image, tmp_path, labels=False):
        super().__init__(image, tmp_path)
        self.name = f"cmd{uuid.uuid4().hex[:8]}"
        self.env["LB_NAME"] = self.name
        self.files = ["-f", str(STACK / "docker-compose.yml"), "-f", str(STACK / "commands.yml")]
        if labels:
            self.files += ["-f", str(STACK / "commands-labels.yml")]

    def compose(self, *args, check=True, timeout=600):
        p = subprocess.run(["docker-compose", "-p", self.project, *self.files, *args],
                           capture_output=True, text=True, env=self.env, timeout=timeout)
        if check:
            assert p.returncode == 0, f"docker-compose {args} failed:\n{p.stderr}"
        return p

    def archives(self):
        d = self.backups / self.name
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []

    def members(self, stamp):
        names = [n for n in self.archives() if stamp in n]
        assert len(names) == 1, self.archives()
        with tarfile.open(self.backups / self.name / names[0], "r:*") as t:
            return {os.path.normpath(m.name): (t.extractfile(m).read() if m.isfile() else None)
                    for m in t.getmembers()}


def up(s):
    s.compose("up", "-d", "--build")
    assert wait_for(lambda: all(state(s.cid(x))["running"] for x in ("app", "other", "backup"))), \
        "the stack did not come up"
    return s


@pytest.fixture
def stack(image, tmp_path):
    s = CommandStack(image, tmp_path)
    try:
        yield up(s)
    finally:
        s.compose("down", "-v", "-t", "2", check=False)


@pytest.fixture
def labelled(image, tmp_path):
    s = CommandStack(image, tmp_path, labels=True)
    try:
        yield up(s)
    finally:
        s.compose("down", "-v", "-t", "2", check=False)


def test_commands_in_service_containers(stack):
    """`app: ...` runs in the app's container (its own file system: the marker lands in its
    volume, which the sidecar backs up), `other: ...` by container name; the output is in
    the log with the container in front; the post command ran in the container too."""
    b_app = state(stack.cid("app"))
    p = stack.lifeboat("backup", env={
        "BACKUP_PRE_COMMANDS": "app: sh -c 'hostname > /data/exec-marker; echo from-app; "
                               "echo err-from-app >&2'\n"
                               f"{stack.named}: sh -c 'echo from-other'",
        "BACKUP_POST_COMMANDS": "app: sh -c 'echo post > /data/post-exec'"})
    assert p.returncode == 0, p.stderr
    stamp = p.stdout.strip()
    got = stack.members(stamp)
    # the app container's hostname (its id prefix), not the sidecar's
    assert got["dirs/app-data/exec-marker"].decode().strip() == stack.cid("app")[:12]
    assert "[app] from-app" in p.stderr and "[app] err-from-app" in p.stderr
    assert f"[{stack.named}] from-other" in p.stderr
    assert stack.sh("cat /data/post-exec").stdout == "post\n"
    assert_untouched(b_app, state(stack.cid("app")))  # commands stop nothing


def test_pre_command_in_a_stopped_container_fails_before_anything(stack):
    """A pre command whose container is not running fails the run before anything is
    stopped or read; BACKUP_STOP_SERVICES' container is left alone; the post command ran."""
    other = stack.named
    docker("stop", "-t", "2", other)
    b_app = state(stack.cid("app"))
    p = stack.lifeboat("backup", env={"BACKUP_STOP_SERVICES": "app",
                                      "BACKUP_PRE_COMMANDS": f"{other}: true",
                                      "BACKUP_POST_COMMANDS": ": touch /tmp/post-ran"})
    assert p.returncode == 4, p.stderr
    assert f"could not run in '{other}'" in p.stderr, p.stderr
    assert "nothing was backed up" in p.stderr
    assert stack.archives() == []
    assert_untouched(b_app, state(stack.cid("app")))
    stack.sh("test -e /tmp/post-ran")


def test_a_container_command_past_its_timeout_fails_the_run(stack):
    """BACKUP_COMMAND_TIMEOUT in a container: the run stops waiting and fails before
    anything is read (the engine cannot stop an exec'd command; it is left running)."""
    p = stack.lifeboat("backup", env={"BACKUP_COMMAND_TIMEOUT": "2",
                                      "BACKUP_PRE_COMMANDS": "app: sleep 600",
                                      "BACKUP_POST_COMMANDS": ": touch /tmp/post-ran"},
                       timeout=300)
    assert p.returncode == 4, p.stderr
    assert "did not end within 2 s (BACKUP_COMMAND_TIMEOUT)" in p.stderr, p.stderr
    assert stack.archives() == []
    stack.sh("test -e /tmp/post-ran")


def test_post_command_runs_in_a_container_that_was_stopped(stack):
    """The post command of a stopped-and-started service runs after its restart."""
    app = stack.cid("app")
    b_app = state(app)
    t0 = time.time()
    p = stack.lifeboat("backup", env={"BACKUP_STOP_SERVICES": "app",
                                      "BACKUP_POST_COMMANDS": "app: sh -c 'cat /proc/1/stat "
                                                              "> /data/post-stat'"})
    t1 = time.time()
    assert p.returncode == 0, p.stderr
    assert_stopped_and_started(b_app, state(app), t0, t1)
    assert stack.sh("cat /data/post-stat").stdout.startswith("1 ")


def test_restore_commands_in_a_container(stack):
    """The pre-restore command runs in the app after verification and before the swap (it
    sees the wrecked data, while the app still runs), the post-restore one after the
    restart (it sees the restored data)."""
    app = stack.cid("app")
    p = stack.lifeboat("backup")
    assert p.returncode == 0, p.stderr
    stamp = p.stdout.strip()
    stack.sh("echo wrecked >/data/ticks")
    b_app = state(app)
    t0 = time.time()
    p = stack.lifeboat("restore", stamp, "--yes", env={
        "BACKUP_PRE_RESTORE_COMMANDS": "app: sh -c 'head -c 7 /data/ticks > /tmp/pre-saw'",
        "BACKUP_POST_RESTORE_COMMANDS": "app: sh -c 'head -c 7 /data/ticks > /tmp/post-saw'"})
    t1 = time.time()
    assert p.returncode == 0, p.stderr
    assert_stopped_and_started(b_app, state(app), t0, t1)
    saw = docker("exec", app, "cat", "/tmp/pre-saw", "/tmp/post-saw").stdout
    assert saw.startswith("wrecked") and saw[7:] != "wrecked" and len(saw) == 14, saw
    assert "wrecked" not in stack.sh("head -c 100 /data/ticks").stdout


def test_labels_run_commands_and_stop_the_container(labelled):
    """lifeboat.pre-backup wrote its marker before the read (the archive holds it),
    lifeboat.stop stopped and restarted the app, lifeboat.post-backup ran after."""
    app = labelled.cid("app")
    b_app = state(app)
    t0 = time.time()
    p = labelled.lifeboat("backup")
    t1 = time.time()
    assert p.returncode == 0, p.stderr
    got = labelled.members(p.stdout.strip())
    pre_at = float(got["dirs/app-data/pre-marker"])
    assert t0 - 1 <= pre_at <= t1 + 1
    assert_stopped_and_started(b_app, state(app), t0, t1)
    # the pre command ran while the app was still up: before it was stopped
    assert pre_at <= state(app)["finished"]
    assert "dirs/app-data/post-marker" not in got
    assert labelled.sh("cat /data/post-marker").stdout == "post\n"
    assert "label lifeboat.pre-backup of" in p.stderr
    assert "stopping container" in p.stderr
    # `check` lists what the labels select
    c = labelled.lifeboat("check")
    assert c.returncode == 0, c.stderr
    name = docker("inspect", "-f", "{{.Name}}", app).stdout.strip().lstrip("/")
    assert f"lifeboat.stop        '{name}' is stopped around each backup" in c.stdout, c.stdout
    assert f"lifeboat.pre-backup  '{name}': sh -c 'date +%s.%N > /data/pre-marker'" in c.stdout


def test_sigkill_with_a_labelled_container_stopped_recovers(labelled):
    """lifeboat.stop has BACKUP_STOP_SERVICES' record: when the sidecar is SIGKILLed while
    the labelled app is down, its next start brings the app back."""
    app, backup = labelled.cid("app"), labelled.cid("backup")
    labelled.sh(f"mkdir -p /tmp/big && head -c {800 * 1024 * 1024} /dev/urandom >/tmp/big/blob")
    run = subprocess.Popen(labelled.exec_args("lifeboat", "backup",
                                              env={"BACKUP_DIRS": "/data:app-data,/tmp/big:big"}),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: not state(app)["running"]), "the app was never stopped"
        docker("kill", "-s", "KILL", backup)
        run.communicate(timeout=300)
    finally:
        run.kill()
    assert not state(app)["running"]
    docker("start", backup)
    assert wait_for(lambda: state(app)["running"]), "the restarted sidecar left app down"
    logs = docker("logs", backup).stderr
    assert "was killed while containers were stopped" in logs


def foreign_container(image_tag, labels, tmp_path):
    name = f"lbforeign{uuid.uuid4().hex[:8]}"
    args = ["run", "-d", "--name", name]
    for k, v in labels.items():
        args += ["--label", f"{k}={v}"]
    docker(*args, image_tag)
    return name


def test_label_scoping(labelled, tmp_path):
    """Only the sidecar's own containers: another Compose project's labels are ignored
    (neither its command nor its stop), one naming this sidecar (lifeboat.name) is used,
    and lifeboat.stop=<BACKUP_NAME> selects a container anywhere."""
    img = "lifeboat-e2e-app:latest"
    cmd = "sh -c 'echo ran > /data/foreign-marker'"
    foreign = foreign_container(img, {"com.docker.compose.project": "someoneelse",
                                      "com.docker.compose.service": "app",
                                      "lifeboat.pre-backup": cmd, "lifeboat.stop": "true"},
                                tmp_path)
    # ours by name, outside the project
    named = foreign_container(img, {"lifeboat.name": labelled.name,
                                    "lifeboat.pre-backup": cmd}, tmp_path)
    # another sidecar's, though in our project: its lifeboat.name wins
    theirs = foreign_container(img, {"com.docker.compose.project": labelled.project,
                                     "lifeboat.name": "another-sidecar",
                                     "lifeboat.pre-backup": cmd, "lifeboat.stop": "true"},
                               tmp_path)
    # stopped by name from anywhere
    by_stop = foreign_container(img, {"lifeboat.stop": labelled.name}, tmp_path)
    try:
        assert wait_for(lambda: all(state(c)["running"]
                                    for c in (foreign, named, theirs, by_stop)))
        before = {c: state(c) for c in (foreign, named, theirs, by_stop)}
        t0 = time.time()
        p = labelled.lifeboat("backup")
        t1 = time.time()
        assert p.returncode == 0, p.stderr

        def marker(c):
            return docker("exec", c, "cat", "/data/foreign-marker", check=False).stdout

        assert marker(named) == "ran\n"
        assert marker(foreign) == "" and marker(theirs) == ""
        assert_untouched(before[foreign], state(foreign))
        assert_untouched(before[theirs], state(theirs))
        assert_untouched(before[named], state(named))  # no lifeboat.stop
        assert_stopped_and_started(before[by_stop], state(by_stop), t0, t1)
    finally:
        for c in (foreign, named, theirs, by_stop):
            docker("rm", "-f", c, check=False)


def test_a_bad_label_fails_before_anything(labelled, tmp_path):
    bad = foreign_container("lifeboat-e2e-app:latest",
                            {"lifeboat.name": labelled.name,
                             "lifeboat.pre-backup": "echo 'unclosed"}, tmp_path)
    try:
        app = labelled.cid("app")
        b_app = state(app)
        p = labelled.lifeboat("backup")
        assert p.returncode == 3, p.stderr
        assert f"label lifeboat.pre-backup of container '{bad}', line 1: a single quote is " \
               "not closed" in p.stderr, p.stderr
        assert labelled.archives() == []
        assert_untouched(b_app, state(app))
    finally:
        docker("rm", "-f", bad, check=False)


# ---- the example stack: its app's pre-backup label writes a marker the archive holds ----

def test_example_stack_label_marker_is_in_the_archive(image, tmp_path):
    from test_scenarios import Stack as ExampleStack
    env = {"BACKUP_NAME": "example", "BACKUP_LOCAL_PATH": "/backups-local",
           "BACKUP_ENCRYPTION": "none", "BACKUP_DIRS": "/app/uploads:uploads", "TZ": "UTC"}
    s = ExampleStack(tmp_path, REPO / "docker-compose.example.yml", env)
    try:
        s.run("up", "-d", "--build", timeout=1800)
        wait_for(lambda: s.container_state("app") == "running")
        t0 = time.time()
        b = s.exec("backup", "/backup-scripts/backup-now.sh")
        t1 = time.time()
        stamp = b.stdout.strip().splitlines()[-1]
        archive = s.backups / "example" / f"example-{stamp}.tar.gz"
        with tarfile.open(archive, "r:gz") as t:
            marker = t.extractfile("dirs/uploads/.lifeboat-backup-started").read().decode()
        # written by this run's pre-backup command, before the read
        at = calendar.timegm(time.strptime(marker.strip(), "%Y-%m-%dT%H:%M:%SZ"))
        assert t0 - 2 <= at <= t1 + 2, (marker, t0, t1)
        assert "label lifeboat.pre-backup of" in b.stderr, b.stderr
    finally:
        s.down()
