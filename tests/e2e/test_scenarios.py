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
