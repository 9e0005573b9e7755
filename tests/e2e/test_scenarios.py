"""The spec's scenarios, run with docker-compose against the real engine.

Scenario 1 uses the repository's own example stack (docker-compose.example.yml: an app
writing uploads, SQLite and PostgreSQL; PostgreSQL; the Lifeboat sidecar), each test in a
compose project of its own with its own .env and backup directory.
"""

import os
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import IN_CI, REPO

DB_PASSWORD = "db p@ss:w/rd"


def compose_cmd():
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    msg = "neither 'docker compose' nor docker-compose is installed"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


class Stack:
    def __init__(self, tmp_path, compose_file, env):
        self.project = "lbe2e" + uuid.uuid4().hex[:8]
        self.dir = tmp_path
        self.backups = tmp_path / "backups"
        self.backups.mkdir()
        self.env_file = tmp_path / "stack.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        self.base = compose_cmd() + ["-p", self.project, "-f", str(compose_file)]
        self.proc_env = dict(os.environ, LIFEBOAT_ENV_FILE=str(self.env_file),
                             BACKUP_HOST_DIR=str(self.backups), DB_PASSWORD=DB_PASSWORD)

    def run(self, *args, check=True, timeout=900, input=None):
        p = subprocess.run(self.base + list(args), capture_output=True, text=True,
                           env=self.proc_env, cwd=str(REPO), timeout=timeout, input=input)
        if check:
            assert p.returncode == 0, f"{' '.join(args)} failed ({p.returncode}):\n" \
                                      f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        return p

    def exec(self, service, *cmd, check=True):
        return self.run("exec", "-T", service, *cmd, check=check)

    def container_state(self, service):
        cid = self.run("ps", "-q", service).stdout.strip()
        if not cid:
            return None
        p = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", cid],
                           capture_output=True, text=True)
        return p.stdout.strip()

    def down(self):
        self.run("down", "-v", "--remove-orphans", check=False, timeout=300)


def psql(stack, sql):
    return stack.exec("db", "psql", "-X", "-U", "postgres", "-d", "app", "-Atc", sql).stdout.strip()


def wait_for(pred, what, timeout=180, stack=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except (AssertionError, ValueError) as e:
            last = e
        time.sleep(1)
    logs = stack.run("logs", "--tail=30", check=False).stdout[-4000:] if stack else ""
    pytest.fail(f"timed out waiting for {what} (last error: {last})\n{logs}")


def app_state(stack):
    """Everything the example app wrote: PostgreSQL rows, uploads, SQLite rows."""
    pg_rows = psql(stack, "SELECT count(*) || ':' || md5(string_agg(id || note, ',' ORDER BY id)) "
                          "FROM events")
    uploads = stack.exec("backup", "sh", "-c",
                         "cd /app/uploads && ls -A | sort | xargs -r sha256sum").stdout
    sqlite = stack.run("run", "--rm", "--no-deps", "app", "python3", "-c",
                       "import sqlite3; d = sqlite3.connect('/app/db/app.db'); "
                       "print(d.execute('PRAGMA integrity_check').fetchone()[0], "
                       "d.execute(\"SELECT count(*), group_concat(note, ',') FROM "
                       "(SELECT note FROM events ORDER BY id)\").fetchone())",
                       check=False)
    sqlite = (sqlite.stdout + sqlite.stderr[-300:] if sqlite.returncode else sqlite.stdout).strip()
    return {"postgres": pg_rows, "uploads": uploads, "sqlite": sqlite}


@pytest.fixture
def example_stack(image, tmp_path):
    pg_uri = "postgresql://postgres:" + DB_PASSWORD.replace(" ", "%20").replace(
        "@", "%40").replace(":", "%3A").replace("/", "%2F") + "@db:5432/app"
    env = {
        "BACKUP_NAME": "example",
        "BACKUP_LOCAL_PATH": "/backups-local",
        "BACKUP_ENCRYPTION_KEY": "e2e scenario passphrase",
        "BACKUP_DIRS": "/app/uploads:uploads",
        "BACKUP_FILES": "/app/db/app.db:appdb",
        "BACKUP_POSTGRES": pg_uri,
        "TZ": "UTC",
    }
    stack = Stack(tmp_path, REPO / "docker-compose.example.yml", env)
    try:
        stack.run("up", "-d", "--build", timeout=1800)
        yield stack
    finally:
        stack.down()


def test_scenario_1_web_app_postgres_uploads(example_stack):
    """Spec scenario 1: web app + PostgreSQL + uploads, local store; backup, wreck,
    restore.sh TIMESTAMP, data identical, services running."""
    s = example_stack
    wait_for(lambda: int(psql(s, "SELECT count(*) FROM events") or 0) >= 3,
             "the app to write to PostgreSQL", stack=s)
    # A fixed point to compare against: the app pauses while we back up.
    s.run("stop", "app")
    before = app_state(s)
    assert before["postgres"].split(":")[0] != "0"
    assert before["sqlite"].startswith("ok")

    b = s.exec("backup", "/backup-scripts/backup-now.sh")
    ts = b.stdout.strip().splitlines()[-1]
    archive = s.backups / "example" / f"example-{ts}.tar.gz.gpg"
    assert archive.is_file()
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    assert ts in s.exec("backup", "/backup-scripts/list-backups.sh").stdout

    # Wreck all three kinds of data.
    psql(s, "TRUNCATE events; CREATE TABLE junk (x int)")
    s.exec("backup", "sh", "-c", "rm -f /app/uploads/upload-000001.txt; "
                                 "echo wrecked > /app/uploads/upload-000002.txt; "
                                 "echo junk > /app/uploads/junk.txt; "
                                 "echo garbage > /app/db/app.db; rm -f /app/db/app.db-wal")
    assert app_state(s) != before

    r = s.exec("backup", "/backup-scripts/restore.sh", ts, "--yes")
    assert "error" not in r.stderr.lower(), r.stderr
    assert app_state(s) == before
    assert psql(s, "SELECT count(*) FROM pg_tables WHERE tablename = 'junk'") == "0"

    s.run("start", "app")
    for svc in ("app", "db", "backup"):
        wait_for(lambda svc=svc: s.container_state(svc) == "running", f"{svc} running", 60)
    n = int(before["postgres"].split(":")[0])
    wait_for(lambda: int(psql(s, "SELECT count(*) FROM events")) > n,
             "the app to write again after the restore")


# --------------------------------------------------------------------------
# scenarios 5 and 6: the scheduler in the container, health, bad configuration
# --------------------------------------------------------------------------

def docker_ok(*args, timeout=600):
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"docker {' '.join(args)}: {p.stderr}"
    return p.stdout.strip()


@pytest.fixture
def network():
    name = "lbnet" + uuid.uuid4().hex[:8]
    docker_ok("network", "create", name)
    containers = []
    try:
        yield name, containers
    finally:
        for c in containers:
            subprocess.run(["docker", "rm", "-f", c], capture_output=True)
        subprocess.run(["docker", "network", "rm", name], capture_output=True)


@pytest.fixture(scope="session")
def hooks_image(image):
    tag = "lifeboat-e2e-hooks"
    docker_ok("build", "-q", "-t", tag, str(REPO / "tests" / "e2e" / "hooks"), timeout=1800)
    return tag


def start_hooks(network, hooks_image, out_dir):
    net, containers = network
    name = "hooks" + uuid.uuid4().hex[:6]
    out_dir.mkdir(exist_ok=True)
    docker_ok("run", "-d", "--name", name, "--network", net, "--network-alias", "hooks",
              "-v", f"{out_dir}:/out", hooks_image)
    containers.append(name)
    return out_dir / "hooks.jsonl"


def read_hooks(path):
    import json
    if not path.exists():
        return []
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def health(name):
    import json
    st = json.loads(docker_ok("inspect", name))[0]["State"]
    return st.get("Health", {}).get("Status"), st


def test_scenario_5_schedule_retention_health(image, network, tmp_path):
    """A seconds-field schedule backs up on its own, retention prunes, health turns
    healthy, and unhealthy once the runs start failing."""
    net, containers = network
    data = tmp_path / "data"
    (data / "src").mkdir(parents=True)
    (data / "src" / "f.txt").write_text("scheduled\n")
    backups = tmp_path / "backups"
    backups.mkdir()
    name = "lbsched" + uuid.uuid4().hex[:6]
    env = {"BACKUP_NAME": "sched", "BACKUP_LOCAL_PATH": "/backups-local",
           "BACKUP_ENCRYPTION_KEY": "e2e", "BACKUP_DIRS": "/data/src:src",
           "BACKUP_SCHEDULE": "*/4 * * * * *", "BACKUP_KEEP_LAST": "2"}
    args = ["run", "-d", "--name", name, "--network", net, "--health-interval", "2s",
            "--health-start-period", "1s", "--health-retries", "1",
            "-v", f"{data}:/data", "-v", f"{backups}:/backups-local"]
    for k, v in env.items():
        args += ["-e", f"{k}={v}"]
    docker_ok(*args, image)
    containers.append(name)
    store = backups / "sched"

    def archives():
        return sorted(n for n in os.listdir(store) if n.endswith(".tar.gz.gpg")) \
            if store.exists() else []
    seen = set()

    def three_runs():
        seen.update(archives())
        return len(seen) >= 4
    wait_for(three_runs, "four scheduled backups", timeout=120)
    time.sleep(1)
    assert len(archives()) <= 3, archives()  # KEEP_LAST=2 (+ one run in flight at most)
    wait_for(lambda: health(name)[0] == "healthy", "healthy", timeout=60)

    # Force failures: the source disappears.
    shutil.rmtree(data / "src")
    wait_for(lambda: health(name)[0] == "unhealthy", "unhealthy after failed runs",
             timeout=60)
    st = health(name)[1]
    assert st["Running"], st
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr
    assert "/data/src" in logs and "error" in logs


@pytest.mark.parametrize("case", ["missing_name", "bad_schedule"])
def test_scenario_6_bad_configuration_stops_the_container(image, tmp_path, case):
    env = {"BACKUP_NAME": "bad", "BACKUP_LOCAL_PATH": "/tmp", "BACKUP_ENCRYPTION_KEY": "k",
           "BACKUP_DIRS": "/etc:etc", "BACKUP_SCHEDULE": "0 2 * * *"}
    if case == "missing_name":
        del env["BACKUP_NAME"]
        needle = "BACKUP_NAME"
    else:
        env["BACKUP_SCHEDULE"] = "61 * * * *"
        needle = "BACKUP_SCHEDULE"
    args = ["run", "--rm"]
    for k, v in env.items():
        args += ["-e", f"{k}={v}"]
    p = subprocess.run(["docker", *args, image], capture_output=True, text=True, timeout=120)
    assert p.returncode == 3, (p.returncode, p.stderr)
    errors = [l for l in p.stderr.splitlines() if "error" in l]
    assert len(errors) == 1 and needle in errors[0], p.stderr


def test_scenario_6_unreachable_database_reports_through_the_webhook(image, hooks_image,
                                                                      network, tmp_path):
    net, containers = network
    hooks = start_hooks(network, hooks_image, tmp_path / "hooks")
    name = "lbbaddb" + uuid.uuid4().hex[:6]
    secret = "s3cr3t-" + uuid.uuid4().hex[:6]
    env = {"BACKUP_NAME": "baddb", "BACKUP_LOCAL_PATH": "/tmp", "BACKUP_ENCRYPTION_KEY": "k",
           "BACKUP_POSTGRES": f"postgresql://postgres:{secret}@nowhere-db:5432/app",
           "BACKUP_SCHEDULE": "*/3 * * * * *",
           "BACKUP_FAILURE_WEBHOOK": "http://hooks:8080/fail",
           "BACKUP_SUCCESS_WEBHOOK": "http://hooks:8080/ok"}
    args = ["run", "-d", "--name", name, "--network", net]
    for k, v in env.items():
        args += ["-e", f"{k}={v}"]
    docker_ok(*args, image)
    containers.append(name)
    wait_for(lambda: any(h["path"] == "/fail" for h in read_hooks(hooks)),
             "a failure webhook", timeout=120)
    fail = [h for h in read_hooks(hooks) if h["path"] == "/fail"][0]
    assert "nowhere-db" in fail["body"] and "***" in fail["body"], fail
    assert secret not in fail["body"]
    assert not any(h["path"] == "/ok" for h in read_hooks(hooks))
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
    assert secret not in logs.stdout + logs.stderr
    assert health(name)[1]["Running"]
