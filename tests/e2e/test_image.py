"""The image: the seed's /backup-scripts commands back up and restore mounted data."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from conftest import docker

# The integration suite's poll helper (appended, so this suite's conftest stays first).
sys.path.append(str(Path(__file__).resolve().parents[1] / "integration"))
from waiting import HANG, wait_until  # noqa: E402


def tree(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.isfile(p) and not os.path.islink(p):
                out[rel] = ("f", st.st_mode & 0o7777, int(st.st_mtime),
                            hashlib.sha256(open(p, "rb").read()).hexdigest())
            elif os.path.islink(p):
                out[rel] = ("l", os.readlink(p))
            else:
                out[rel] = ("d", st.st_mode & 0o7777, int(st.st_mtime))
    return out


def run(image, tmp_path, *cmd, env=None, entrypoint=None):
    args = ["run", "--rm", "-v", f"{tmp_path / 'data'}:/data",
            "-v", f"{tmp_path / 'backups'}:/backups-local"]
    for k, v in {"BACKUP_NAME": "e2e", "BACKUP_LOCAL_PATH": "/backups-local",
                 "BACKUP_ENCRYPTION_KEY": "e2e passphrase", "BACKUP_DIRS": "/data:app-data",
                 "TZ": "Europe/Berlin", **(env or {})}.items():
        args += ["-e", f"{k}={v}"]
    if entrypoint:
        args += ["--entrypoint", entrypoint]
    return docker(*args, image, *cmd, check=False)


def test_backup_list_restore_with_the_seed_scripts(image, tmp_path):
    data = tmp_path / "data"
    (data / "uploads" / "ünï").mkdir(parents=True)
    (data / "uploads" / "ünï" / "photo.bin").write_bytes(os.urandom(300_000))
    (data / "notes.txt").write_text("keep me\n")
    os.symlink("notes.txt", data / "link")
    (tmp_path / "backups").mkdir()
    orig = tree(data)

    b = run(image, tmp_path, entrypoint="/backup-scripts/backup-now.sh")
    assert b.returncode == 0, b.stderr
    # The default BACKUP_LOG_FILE (/var/log/backup.log) can be written in the image.
    assert "cannot open log file" not in b.stderr, b.stderr
    ts = b.stdout.strip()
    archive = tmp_path / "backups" / "e2e" / f"e2e-{ts}.tar.gz.gpg"
    assert archive.is_file()
    assert archive.stat().st_mode & 0o777 == 0o600

    ls = run(image, tmp_path, entrypoint="/backup-scripts/list-backups.sh")
    assert ls.returncode == 0, ls.stderr
    assert ts in ls.stdout

    (data / "notes.txt").write_text("wrecked\n")
    (data / "new-file").write_text("created after the backup\n")
    r = run(image, tmp_path, ts, "--yes", entrypoint="/backup-scripts/restore.sh")
    assert r.returncode == 0, r.stderr
    assert tree(data) == orig


def test_bad_configuration_fails_with_one_clear_line(image, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "backups").mkdir()
    r = run(image, tmp_path, "backup", env={"BACKUP_NAME": ""})
    assert r.returncode == 3
    errors = [l for l in r.stderr.splitlines() if "error" in l]
    assert len(errors) == 1 and "BACKUP_NAME" in errors[0], r.stderr
    assert os.listdir(tmp_path / "backups") == []


def test_image_has_what_lifeboat_calls(image):
    p = docker("run", "--rm", "--entrypoint", "sh", image, "-c",
               "command -v gpg && command -v gpgconf && command -v gpg-agent "
               "&& pg_dump --version && pg_restore --version && psql --version "
               "&& pg_dumpall --version "
               "&& mariadb --version && mariadb-dump --version && redis-cli --version "
               "&& age --version "
               "&& test -f /usr/share/zoneinfo/Europe/Berlin "
               "&& test -s /etc/ssl/certs/ca-certificates.crt && lifeboat version",
               check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    # PostgreSQL's own programs, not Debian's Perl wrapper (there is no Perl).
    assert "pg_dump (PostgreSQL) 15" in p.stdout


def test_image_is_small(image):
    """The runtime is FROM scratch with only what the programs load (issue #18: <= 80 MB)."""
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
    assert size <= 80_000_000, f"the image is {size / 1e6:.1f} MB"


def test_scheduled_container_backs_up_and_is_healthy(image, tmp_path):
    """The image's default command is the scheduler; its HEALTHCHECK reports the runs."""
    import json
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.txt").write_text("scheduled\n")
    (tmp_path / "backups").mkdir()
    name = "lifeboat-e2e-" + os.urandom(4).hex()
    args = ["run", "-d", "--name", name,
            "--health-interval", "2s", "--health-start-period", "1s",
            "-v", f"{data}:/data", "-v", f"{tmp_path / 'backups'}:/backups-local"]
    for k, v in {"BACKUP_NAME": "e2e", "BACKUP_LOCAL_PATH": "/backups-local",
                 "BACKUP_ENCRYPTION_KEY": "e2e passphrase", "BACKUP_DIRS": "/data:app-data",
                 "BACKUP_SCHEDULE": "*/3 * * * * *", "BACKUP_KEEP_LAST": "2",
                 "BACKUP_METRICS_ADDR": "127.0.0.1:9100"}.items():
        args += ["-e", f"{k}={v}"]
    docker(*args, image)
    try:
        store = tmp_path / "backups" / "e2e"

        def archives():
            return sorted(n for n in os.listdir(store) if n.endswith(".tar.gz.gpg")) \
                if store.exists() else []
        seen = set()

        def pruned():
            now = archives()
            seen.update(now)
            # Retention keeps the last two: an archive seen earlier is gone again.
            return len(seen) >= 3 and len(now) < len(seen)
        wait_until(pruned, "three scheduled backups and one pruned", interval=0.5)
        assert len(archives()) <= 3  # KEEP_LAST=2, and at most the newest not pruned yet

        def state():
            return json.loads(docker("inspect", name).stdout)[0]["State"]
        wait_until(lambda: state().get("Health", {}).get("Status") == "healthy",
                   "the container to be healthy", interval=1)
        assert state()["Running"]
        # PID 1 is lifeboat-sched (issue #18: the idle daemon maps no heavy library), and
        # the libmicrohttpd it loads for BACKUP_METRICS_ADDR is in the image.
        metrics = docker("exec", name, "wget", "-qO-", "http://127.0.0.1:9100/metrics").stdout
        assert 'lifeboat_runs_total{name="e2e",outcome="success"}' in metrics
        assert docker("exec", name, "readlink", "/proc/1/exe").stdout.strip() == \
            "/usr/local/bin/lifeboat-sched"
        maps = docker("exec", name, "cat", "/proc/1/maps").stdout
        assert "libmicrohttpd" in maps and "libarchive" not in maps and "libcurl" not in maps
        rss = next(int(line.split()[1]) for line in
                   docker("exec", name, "cat", "/proc/1/status").stdout.splitlines()
                   if line.startswith("VmRSS:"))
        print(f"PID 1 VmRSS with metrics, between runs or during one: {rss} KiB")
        assert rss <= 6 * 1024, rss
    finally:
        logs = docker("logs", name, check=False)
        # -t: the engine's SIGKILL deadline after SIGTERM, a hang guard here.
        docker("stop", "-t", "120", name, check=False, timeout=HANG)
        st = json.loads(docker("inspect", name).stdout)[0]["State"]
        docker("rm", "-f", name, check=False)
    # SIGTERM from `docker stop` ends the daemon cleanly: no partial archive left.
    assert st["ExitCode"] in (0, 130), (st, logs.stderr[-2000:])
    assert [n for n in os.listdir(store) if n.endswith(".partial")] == []
