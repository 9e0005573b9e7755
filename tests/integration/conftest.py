"""Shared helpers for the Lifeboat integration tests.

The binary under test is taken from ``$LIFEBOAT_BIN`` (absolute path) or
``<repo>/build/lifeboat``.  Every invocation runs with a clean, fully
controlled environment: only PATH and HOME are inherited/created, TZ is UTC
unless a test overrides it, and no BACKUP_* variable of the caller leaks in.

Under ``CI=true`` a missing external tool (gpg, tar, sha256sum, ...) or a
missing binary is a test failure, never a skip.

The servers (MinIO, FerretDB, PostgreSQL, sshd, Apache with mod_dav, rclone serve webdav,
Azurite, ...) are session fixtures from ``tests/lbservers.py``: started on first use on free loopback ports (one set per pytest worker), stopped at the
end, so any test file runs alone.
"""

import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
import lbservers  # noqa: E402
IN_CI = os.environ.get("CI", "").lower() == "true"
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{6}$")

# Exit codes from the contract.
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_SOURCE = 4
EXIT_STORE = 5
EXIT_CRYPTO = 6
EXIT_INTEGRITY = 7
EXIT_NOT_FOUND = 8

# A fixed "explicit" mtime base, with a non-zero sub-second part on purpose.
MTIME_BASE_NS = 1_600_000_000_123_456_789


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long-running test (still run by default)")


# --------------------------------------------------------------------------
# servers (session-scoped: one of each per pytest worker, started on first use)
# --------------------------------------------------------------------------

minio_server = lbservers.server_fixture(
    "minio_server", lbservers.Minio,
    "MinIO on a free loopback port; also exports LB_S3_* and LB_MINIO_*.")
ferretdb_server = lbservers.server_fixture(
    "ferretdb_server", lbservers.FerretDB,
    "FerretDB (MongoDB wire protocol) with auth on; also exports LB_MONGO_*.")
pg_server = lbservers.server_fixture(
    "pg_server", lbservers.Postgres, "A private PostgreSQL server; also exports LB_PG_*.")
sshd_server = lbservers.server_fixture(
    "sshd_server", lbservers.Sshd,
    "OpenSSH's sshd (SFTP only) with a password/key account and a chrooted one; also exports "
    "LB_SSHD_*.")

redis_server = lbservers.server_fixture(
    "redis_server", lbservers.Redis, "A private redis-server (7.0); also exports LB_REDIS_*.")
redis_tls_server = lbservers.server_fixture(
    "redis_tls_server", lbservers.RedisTLS,
    "A private redis-server on TLS only, its certificate signed by a CA of its own (.tls_ca; "
    ".other_ca signed nothing it shows).")
mariadb_server = lbservers.server_fixture(
    "mariadb_server", lbservers.MariaDB,
    "A private MariaDB server (Debian's mariadb-server); also exports LB_MYSQL_*.")

apache_server = lbservers.server_fixture(
    "apache_server", lbservers.Apache,
    "Apache httpd with mod_dav behind basic auth on a free loopback port (.url, .user, "
    ".password, .dav: the served directory).")
apache_tls_server = lbservers.server_fixture(
    "apache_tls_server", lambda: lbservers.Apache(tls=True),
    "The same over HTTPS with a self-signed certificate (.ca_file).")
rclone_webdav_server = lbservers.server_fixture(
    "rclone_webdav_server", lbservers.RcloneWebdav,
    "`rclone serve webdav` with basic auth: a second WebDAV implementation (.url, .dav).")
azurite_server = lbservers.server_fixture(
    "azurite_server", lbservers.Azurite,
    "Azurite (the Azure Storage emulator, from npm) on a free loopback port (.endpoint, "
    ".rclone_conf(NAME)).")


@pytest.fixture(scope="session")
def mongorestore_path():
    """MongoDB's own mongorestore, built from mongo-tools into the test cache."""
    try:
        return str(lbservers.mongorestore_bin())
    except lbservers.Unavailable as e:
        lbservers.unavailable(str(e))


# --------------------------------------------------------------------------
# tools and binary
# --------------------------------------------------------------------------

def lifeboat_bin():
    env_bin = os.environ.get("LIFEBOAT_BIN")
    path = Path(env_bin) if env_bin else REPO / "build" / "lifeboat"
    if not path.is_absolute():
        pytest.fail(f"LIFEBOAT_BIN must be an absolute path, got {env_bin!r}")
    if not (path.is_file() and os.access(path, os.X_OK)):
        # A missing binary is never a silent skip: the suite would be green
        # while testing nothing.
        pytest.fail(f"lifeboat binary not found or not executable: {path} "
                    "(build it with: meson setup build && ninja -C build)")
    return str(path)


def need_tool(name):
    """Return the path of an external tool; fail under CI, skip otherwise."""
    path = shutil.which(name)
    if path is None:
        msg = f"required tool {name!r} not found in PATH"
        if IN_CI:
            pytest.fail(msg + " (CI=true: missing tools are failures)")
        pytest.skip(msg)
    return path


def need_root(what):
    if os.geteuid() != 0:
        msg = f"{what} needs root"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


# --------------------------------------------------------------------------
# snapshots
# --------------------------------------------------------------------------

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def entry_info(full):
    st = os.lstat(full)
    mode = stat.S_IMODE(st.st_mode)
    mtime_s = st.st_mtime_ns // 1_000_000_000
    if stat.S_ISLNK(st.st_mode):
        # Symlink mode/mtime are not part of the contract; the target text is.
        return ("link", None, None, None, os.readlink(full))
    if stat.S_ISDIR(st.st_mode):
        return ("dir", mode, mtime_s, None, None)
    if stat.S_ISREG(st.st_mode):
        return ("file", mode, mtime_s, st.st_size, sha256_file(full))
    return ("other", mode, mtime_s, None, stat.S_IFMT(st.st_mode))


def snapshot(root):
    """{relpath: (type, mode, mtime_s, size, sha256-or-link-target)}.

    The root itself is not included (only its content); dir mtimes are.
    Symlinks are never followed.
    """
    root = str(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = entry_info(full)
    return out


def diff_snapshots(expected, actual):
    """Human-readable differences (for assertion messages)."""
    lines = []
    for k in sorted(set(expected) | set(actual)):
        e, a = expected.get(k), actual.get(k)
        if e != a:
            lines.append(f"  {k!r}: expected {e!r}, got {a!r}")
    return "\n".join(lines[:40]) + ("\n  ..." if len(lines) > 40 else "")


def assert_same_tree(expected, actual, what="tree"):
    assert expected == actual, f"{what} differs:\n{diff_snapshots(expected, actual)}"


def assert_untouched(before, after, what="data"):
    """Compare two snap_all() results, with a readable diff."""
    for part in sorted(set(before) | set(after)):
        assert before.get(part) == after.get(part), \
            f"{what} was modified ({part}):\n" + diff_snapshots(before.get(part) or {},
                                                               after.get(part) or {})


def all_entries(root):
    """Every path (files, dirs, links, hidden or not) below root, relative."""
    out = []
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in dirnames + filenames:
            out.append(os.path.relpath(os.path.join(dirpath, name), str(root)))
    return sorted(out)


def non_dir_entries(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in filenames:
            out.append(os.path.relpath(os.path.join(dirpath, name), str(root)))
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                out.append(os.path.relpath(full, str(root)))
    return sorted(out)


# --------------------------------------------------------------------------
# source tree builder
# --------------------------------------------------------------------------

def set_tree_mtimes(root, base_ns=MTIME_BASE_NS):
    """Give every file and dir below root a distinct explicit mtime (ns).

    Bottom-up so that setting a child does not disturb its parent's mtime
    afterwards.  Symlinks are left alone (their own mtime is not compared).
    """
    i = 0
    for dirpath, dirnames, filenames in os.walk(str(root), topdown=False):
        for name in sorted(filenames) + sorted(dirnames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                continue
            i += 1
            t = base_ns + i * 86_400_000_000_123  # ~1 day apart, odd ns
            os.utime(full, ns=(t, t), follow_symlinks=False)


def build_tree(root, outside_target, big_bytes=3 * 1024 * 1024, seed=1234):
    """Create the standard test tree below ``root`` (which must not exist)."""
    rng = random.Random(seed)
    root = Path(root)
    root.mkdir(parents=True)

    def write(rel, data, mode=0o644):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.chmod(p, mode)
        return p

    write("ünïcødé/日本.txt", "こんにちは, wörld\n".encode() * 50)
    write("ünïcødé/ελληνικά και κενά.md", b"# title\n\nsome text\n")
    write("with space/file with spaces.txt", b"spaces  in\tname\n" * 10)
    write("with space/ leading and trailing ", b"odd name\n")
    write("zero.bin", b"")
    write(".hidden", b"hidden file\n", 0o600)
    write("mode640.txt", b"group readable\n" * 3, 0o640)
    write("script.sh", b"#!/bin/sh\necho hi\n", 0o755)
    write("private.txt", b"only me\n", 0o600)
    write("restricted/inner.txt", b"inside a 0750 dir\n", 0o644)
    write("deep/a/b/c/d/leaf.txt", b"deep leaf\n")
    write("big/random.bin", rng.randbytes(big_bytes))
    write("big/text.log", b"".join(
        b"%06d INFO line of a compressible log file\n" % n for n in range(20000)))
    (root / "empty/nested/deeper").mkdir(parents=True)
    (root / "empty-top").mkdir()
    os.symlink("ünïcødé/日本.txt", root / "link_rel")
    os.symlink("../zero.bin", root / "deep/link_up")
    os.symlink("does/not/exist", root / "dangling")
    os.symlink(str(outside_target), root / "link_out")
    os.symlink("empty", root / "link_to_dir")
    os.chmod(root / "restricted", 0o750)
    os.chmod(root / "big", 0o700)
    set_tree_mtimes(root)
    return root


def wreck_tree(root):
    """The standard set of modifications applied after a backup."""
    root = Path(root)
    (root / "ünïcødé/日本.txt").write_bytes(b"modified content\n")
    (root / "private.txt").unlink()
    (root / "new_file.txt").write_bytes(b"created after the backup\n")
    (root / ".new_hidden").write_bytes(b"also new\n")
    (root / "newdir/sub").mkdir(parents=True)
    (root / "newdir/sub/x.txt").write_bytes(b"x")
    os.chmod(root / "script.sh", 0o644)
    os.chmod(root / "restricted", 0o755)
    (root / "link_rel").unlink()
    shutil.rmtree(root / "empty/nested")
    (root / "zero.bin").write_bytes(b"no longer empty")
    os.utime(root / "mode640.txt", ns=(0, 0))
    os.utime(root / "deep/a", ns=(5, 5))


# --------------------------------------------------------------------------
# gpg helpers (manual recovery with standard tools)
# --------------------------------------------------------------------------

class GpgHome:
    """A throwaway, short-path GnuPG home; the agent is killed on exit."""

    def __enter__(self):
        need_tool("gpg")
        self.path = tempfile.mkdtemp(prefix="g", dir="/tmp")
        os.chmod(self.path, 0o700)
        return self.path

    def __exit__(self, *exc):
        if shutil.which("gpgconf"):
            subprocess.run(["gpgconf", "--homedir", self.path, "--kill", "gpg-agent"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.path, ignore_errors=True)


def gpg_decrypt(archive, keyfile, out_path):
    with GpgHome() as home:
        with open(out_path, "wb") as out:
            p = subprocess.run(
                ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback",
                 "--passphrase-file", str(keyfile), "-d", str(archive)],
                stdout=out, stderr=subprocess.PIPE, timeout=300)
    assert p.returncode == 0, f"gpg -d failed: {p.stderr.decode(errors='replace')}"
    return out_path


def gpg_decrypt_pipe_tar(archive, keyfile, dest):
    """``gpg -d ARCHIVE | tar xz -C DEST`` exactly as a user would do it."""
    need_tool("tar")
    os.makedirs(dest, exist_ok=True)
    with GpgHome() as home:
        gpg = subprocess.Popen(
            ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback",
             "--passphrase-file", str(keyfile), "-d", str(archive)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        tar = subprocess.Popen(["tar", "xz", "-C", str(dest)], stdin=gpg.stdout,
                               stderr=subprocess.PIPE)
        gpg.stdout.close()
        tar_err = tar.communicate(timeout=300)[1]
        gpg_err = gpg.stderr.read()
        gpg.wait(timeout=60)
    assert gpg.returncode == 0, f"gpg -d failed: {gpg_err.decode(errors='replace')}"
    assert tar.returncode == 0, f"tar xz failed: {tar_err.decode(errors='replace')}"
    return Path(dest)


# --------------------------------------------------------------------------
# the lb fixture
# --------------------------------------------------------------------------

class Result:
    def __init__(self, args, proc, elapsed):
        self.args = args
        self.returncode = proc.returncode
        self.stdout_bytes = proc.stdout
        self.stderr_bytes = proc.stderr
        self.stdout = proc.stdout.decode("utf-8", errors="replace")
        self.stderr = proc.stderr.decode("utf-8", errors="replace")
        self.elapsed = elapsed

    def stderr_lines(self):
        return [l for l in self.stderr.splitlines() if l.strip()]

    def __repr__(self):
        return (f"<lifeboat {' '.join(self.args)} rc={self.returncode}\n"
                f"--- stdout ---\n{self.stdout[-4000:]}\n"
                f"--- stderr ---\n{self.stderr[-4000:]}>")


class Lifeboat:
    NAME = "testbk"

    def __init__(self, tmp_path):
        self.bin = lifeboat_bin()
        self.tmp = Path(tmp_path)
        # HOME gets a short path: if the binary talks to gpg, the agent
        # socket path must stay short.
        self.home = Path(tempfile.mkdtemp(prefix="lbh", dir="/tmp"))
        self.root = self.tmp / "data"            # everything the tool may restore into
        self.outside = self.tmp / "outside"      # targets outside the tree
        self.outside.mkdir()
        self.outside_file = self.outside / "victim.txt"
        self.outside_file.write_bytes(b"must never be touched\n")
        self.src = build_tree(self.root / "src", self.outside_file)
        self.single_dir = self.root / "etc"
        self.single_dir.mkdir(parents=True)
        self.single = self.single_dir / "single.conf"
        self.single.write_bytes(b"key = value\n\xff\x00binary-ish\n")
        os.chmod(self.single, 0o640)
        os.utime(self.single, ns=(MTIME_BASE_NS, MTIME_BASE_NS))
        self.store = self.tmp / "store"
        self.store.mkdir()
        self.passphrase = "Lb-test-passphrase-" + os.urandom(8).hex()
        self.keyfile = self.tmp / "key.txt"
        self.keyfile.write_text(self.passphrase + "\n")
        os.chmod(self.keyfile, 0o600)

    # -- environment -------------------------------------------------------
    def base_env(self):
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "TZ": "UTC",
            "BACKUP_NAME": self.NAME,
            "BACKUP_LOCAL_PATH": str(self.store),
            "BACKUP_ENCRYPTION_KEY_FILE": str(self.keyfile),
            "BACKUP_DIRS": f"{self.src}:data",
            "BACKUP_FILES": f"{self.single}:single",
            # Lock, state file and log of this test only (defaults are /var/...).
            "BACKUP_STATE_DIR": str(self.tmp / "state"),
            "BACKUP_LOG_FILE": str(self.tmp / "backup.log"),
            # As in the image (see the Dockerfile): no libmongoc counters in /dev/shm.
            "MONGOC_DISABLE_SHM": "1",
        }

    def env(self, env_extra=None):
        env = self.base_env()
        for k, v in (env_extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    # -- running -----------------------------------------------------------
    def popen(self, args, env_extra=None, umask=0o022, **kw):
        def pre():
            os.umask(umask)
        return subprocess.Popen([self.bin] + list(args), env=self.env(env_extra),
                                stdin=subprocess.DEVNULL, cwd=str(self.tmp),
                                preexec_fn=pre, **kw)

    def run(self, args, env_extra=None, check=True, timeout=300, umask=0o022,
            preexec=None, cwd=None):
        """Run lifeboat.  check=True: expect exit 0; an int: expect that exit
        code; False/None: no check."""
        args = list(args)

        def pre():
            os.umask(umask)
            if preexec:
                preexec()
        t0 = time.monotonic()
        proc = subprocess.run([self.bin] + args, env=self.env(env_extra),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=str(cwd or self.tmp),
                              preexec_fn=pre, timeout=timeout)
        res = Result(args, proc, time.monotonic() - t0)
        if check is True:
            assert res.returncode == 0, f"expected exit 0: {res!r}"
        elif check is not False and check is not None:
            assert res.returncode == check, f"expected exit {check}: {res!r}"
        return res

    # -- common operations -------------------------------------------------
    @property
    def backup_dir(self):
        return self.store / self.NAME

    def archive(self, ts, suffix=".tar.gz.gpg"):
        return self.backup_dir / f"{self.NAME}-{ts}{suffix}"

    def backup(self, env_extra=None, **kw):
        res = self.run(["backup"], env_extra, **kw)
        ts = parse_ts_stdout(res)
        return ts

    def restore(self, ts, env_extra=None, check=True, extra=()):
        return self.run(["restore", ts, "--yes", *extra], env_extra, check=check)

    def snap(self):
        """Snapshot of the dir source plus the single file."""
        return {"src": snapshot(self.src), "single": entry_info(self.single)
                if os.path.lexists(self.single) else None}

    def snap_all(self):
        """Everything the tool could touch when restoring (for 'untouched').

        Covers the dir source, the file source and their parent dirs (so a
        leftover staging file next to a source shows up), plus the targets of
        the outside symlinks.  Only the mtimes of the two containers (the
        dir source itself and the file source's parent) are ignored: a
        restore may stage a temporary entry there and remove it again, which
        changes no data.
        """
        snap = snapshot(self.root)
        for top in (os.path.relpath(self.src, self.root),
                    os.path.relpath(self.single_dir, self.root)):
            if top in snap and snap[top][0] == "dir":
                t, mode, _, size, extra = snap[top]
                snap[top] = (t, mode, None, size, extra)
        return {"root": snap, "outside": snapshot(self.outside)}

    def cleanup(self):
        gnupg = self.home / ".gnupg"
        if gnupg.exists() and shutil.which("gpgconf"):
            subprocess.run(["gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.home, ignore_errors=True)


def assert_no_archive(lb):
    """A failed run leaves nothing in the store directory: no archive, no .partial."""
    if lb.backup_dir.exists():
        left = sorted(os.listdir(lb.backup_dir))
        assert left == [], f"a failed run left files behind: {left}"


def parse_ts_stdout(res):
    lines = [l for l in res.stdout.splitlines() if l.strip()]
    assert len(lines) == 1, f"backup stdout must be exactly the timestamp line: {res!r}"
    ts = lines[0].strip()
    assert TS_RE.match(ts), f"not a YYYY-MM-DD-HHMMSS timestamp: {ts!r}"
    return ts


@pytest.fixture
def lb(tmp_path):
    need_tool("gpg")  # the default encryption mode relies on OpenPGP tooling
    inst = Lifeboat(tmp_path)
    try:
        yield inst
    finally:
        inst.cleanup()


@pytest.fixture
def tmpfs_mount(tmp_path):
    """Factory: mount a tmpfs of the given size; unmounted in teardown."""
    need_root("mounting a tmpfs")
    mounted = []

    def mount(path, size="16m"):
        os.makedirs(path, exist_ok=True)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                            "tmpfs", str(path)], capture_output=True, text=True)
        if p.returncode != 0:
            msg = f"cannot mount tmpfs: {p.stderr.strip()}"
            if IN_CI:
                pytest.fail(msg)
            pytest.skip(msg)
        mounted.append(str(path))
        return Path(path)

    yield mount
    for m in reversed(mounted):
        subprocess.run(["umount", "-l", m], capture_output=True)


def read_json_list(res):
    try:
        data = json.loads(res.stdout)
    except ValueError as e:
        raise AssertionError(f"list --json is not JSON ({e}): {res!r}")
    assert isinstance(data, list), f"list --json must be a JSON array: {res!r}"
    return data


def table_timestamps(res):
    """First column of every row of `list` (header line excluded)."""
    lines = [l for l in res.stdout.splitlines() if l.strip()]
    assert lines, f"list printed nothing: {res!r}"
    rows = lines[1:]
    return [r.split()[0] for r in rows]
