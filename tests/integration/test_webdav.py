"""The WebDAV store against a real server: Apache httpd's mod_dav (tests/lbservers.py starts
it on loopback with basic auth, over HTTP and over HTTPS with a self-signed certificate).

What the server holds is read straight from its DAV directory (apache_server.dav).
"""

import os
import signal
import subprocess
import time
import uuid

import pytest

from conftest import (EXIT_CONFIG, EXIT_STORE, assert_same_tree, read_json_list,
                      table_timestamps, wreck_tree)
import lbservers
from waiting import wait_until


def dav_env(server, base):
    return {"BACKUP_WEBDAV_URL": f"{server.url}/{base}", "BACKUP_WEBDAV_USER": server.user,
            "BACKUP_WEBDAV_PASSWORD": server.password}


@pytest.fixture
def dav(lb, apache_server):
    """A fresh directory on the server; returns (its path on disk, env for lifeboat)."""
    base = "b-" + uuid.uuid4().hex[:12]
    path = apache_server.dav / base
    path.mkdir()
    os.chown(path, apache_server.dav.stat().st_uid, apache_server.dav.stat().st_gid)
    return path, dav_env(apache_server, base)


def held(path, lb):
    """{name: bytes} of everything in the name's directory on the server, hidden names too."""
    d = path / lb.NAME
    if not d.exists():
        return {}
    return {n: (d / n).read_bytes() for n in sorted(os.listdir(d))}


def one_line_error(res):
    errs = [l for l in res.stderr.splitlines()
            if " error: " in l and "no archive was stored" not in l]
    assert len(errs) == 1, f"expected one error line: {res!r}"
    return errs[0]


# --------------------------------------------------------------------------

def test_roundtrip_local_and_webdav(lb, dav):
    path, env = dav
    orig = lb.snap()
    ts = lb.backup(env)
    local = lb.archive(ts)
    # the same bytes on the server, under its final name only
    assert held(path, lb) == {local.name: local.read_bytes()}

    res = lb.run(["list"], env)
    assert table_timestamps(res) == [ts]
    assert res.stdout.splitlines()[1].split()[3] == "both", repr(res)
    data = read_json_list(lb.run(["list", "--json"], env))
    assert [e["stores"] for e in data] == [["local", "webdav"]]

    wreck_tree(lb.src)
    lb.restore(ts, env, extra=["--from", "webdav"])
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from webdav")


def test_webdav_only_and_prune(lb, dav):
    path, env = dav
    env = {**env, "BACKUP_LOCAL_PATH": None, "BACKUP_KEEP_LAST": "2"}
    orig = lb.snap()
    stamps = [lb.backup(env) for _ in range(3)]  # each in a second of its own
    keep = sorted(stamps)[-2:]
    assert sorted(held(path, lb)) == sorted(f"{lb.NAME}-{ts}.tar.gz.gpg" for ts in keep)
    assert table_timestamps(lb.run(["list"], env)) == sorted(keep, reverse=True)
    # a file of someone else's beside them is never touched
    foreign = path / lb.NAME / "notes.txt"
    foreign.write_bytes(b"mine")
    lb.backup(env)
    assert foreign.read_bytes() == b"mine"
    wreck_tree(lb.src)
    lb.restore(keep[-1], env)
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from webdav alone")


def test_webdav_over_https_with_ca_file(lb, apache_tls_server):
    s = apache_tls_server
    base = "t-" + uuid.uuid4().hex[:12]
    (s.dav / base).mkdir()
    os.chown(s.dav / base, s.dav.stat().st_uid, s.dav.stat().st_gid)
    env = {**dav_env(s, base), "BACKUP_LOCAL_PATH": None}
    # the self-signed certificate is refused without the CA file
    res = lb.run(["backup"], env, check=EXIT_STORE)
    line = one_line_error(res)
    assert "webdav" in line and "certificate" in line.lower(), line
    assert not (s.dav / base / lb.NAME).exists() or not os.listdir(s.dav / base / lb.NAME)
    orig = lb.snap()
    env["BACKUP_WEBDAV_CA_FILE"] = s.ca_file
    ts = lb.backup(env)
    assert sorted(os.listdir(s.dav / base / lb.NAME)) == [f"{lb.NAME}-{ts}.tar.gz.gpg"]
    wreck_tree(lb.src)
    lb.restore(ts, env)
    assert_same_tree(orig["src"], lb.snap()["src"], "restored over https")


def test_wrong_password_keeps_local_copy(lb, dav, apache_server):
    path, env = dav
    env = {**env, "BACKUP_WEBDAV_PASSWORD": "wrong-" + apache_server.password}
    res = lb.run(["backup"], env, check=EXIT_STORE)
    line = [l for l in res.stderr.splitlines() if "webdav" in l and "401" in l]
    assert line, repr(res)
    assert "wrong-" not in res.stderr and apache_server.password not in res.stderr
    # the local copy is kept and complete
    ts = [n for n in os.listdir(lb.backup_dir) if not n.startswith(".")]
    assert len(ts) == 1, ts
    assert held(path, lb) == {}


def test_unreachable_server(lb):
    port = lbservers.free_port()
    env = {"BACKUP_WEBDAV_URL": f"http://127.0.0.1:{port}/dav", "BACKUP_WEBDAV_USER": "u",
           "BACKUP_WEBDAV_PASSWORD": "sekrit-pw", "BACKUP_LOCAL_PATH": None}
    res = lb.run(["backup"], env, check=EXIT_STORE)
    line = one_line_error(res)
    assert f"http://127.0.0.1:{port}/dav" in line and "webdav" in line.lower(), line
    assert "sekrit-pw" not in res.stderr


def test_missing_remote_directory(lb, apache_server):
    env = {**dav_env(apache_server, "no-such-dir-" + uuid.uuid4().hex[:8]),
           "BACKUP_LOCAL_PATH": None}
    res = lb.run(["backup"], env, check=EXIT_STORE)
    line = one_line_error(res)
    assert "does not exist" in line and "BACKUP_WEBDAV_URL" in line, line


def test_credentials_in_url_refused(lb, apache_server):
    env = {"BACKUP_WEBDAV_URL": "https://me:hunter2@example.com/dav"}
    res = lb.run(["check"], env, check=EXIT_CONFIG)
    assert "BACKUP_WEBDAV_URL" in res.stderr and "hunter2" not in res.stderr, repr(res)


@pytest.mark.parametrize("point", ["webdav.write@3", "webdav.move"])
def test_killed_mid_upload_leaves_nothing(lb, dav, point):
    """Lifeboat killed while streaming to the server, or between the upload and the MOVE:
    no archive appears on the server, and no run lists one."""
    path, env = dav
    env = {**env, "LIFEBOAT_FAULT": f"{point}:kill"}
    res = lb.run(["backup"], env, check=False)
    assert res.returncode == -signal.SIGKILL, repr(res)
    env.pop("LIFEBOAT_FAULT")
    d = path / lb.NAME
    names = sorted(os.listdir(d)) if d.exists() else []
    assert not [n for n in names if not n.startswith(".")], names
    if point.startswith("webdav.write"):
        # Apache drops a PUT cut short: no temporary either, once it has seen the
        # connection close (its .davfs.tmp goes a moment after the kill).
        wait_until(lambda: not d.exists() or not os.listdir(d), "Apache to drop the cut PUT")
    assert "webdav" not in lb.run(["list", "--json"], env).stdout


def test_failed_upload_deletes_temporary(lb, dav):
    """A failure after the upload (the MOVE refused): the temporary is deleted, the local
    copy kept, exit 5 naming webdav."""
    path, env = dav
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": "webdav.move:fail"}, check=EXIT_STORE)
    assert "webdav" in res.stderr, repr(res)
    assert held(path, lb) == {}
    assert len([n for n in os.listdir(lb.backup_dir) if not n.startswith(".")]) == 1


def temporaries(path, lb):
    return [n for n in held(path, lb) if n.startswith(".")]


def test_temporary_of_a_killed_run_is_removed_by_the_next(lb, dav):
    """Killed between the upload and the MOVE (a fault point): the whole archive stays on
    the server under its hidden temporary name. The next backup of this sidecar removes it
    and says so; the archives finished before and after are whole and restore."""
    path, env = dav
    orig = lb.snap()
    first = lb.backup(env)
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": "webdav.move:kill"}, check=False)
    assert res.returncode == -signal.SIGKILL, repr(res)
    left = temporaries(path, lb)
    assert len(left) == 1 and left[0].endswith(".partial"), held(path, lb).keys()
    res = lb.run(["backup"], env)
    last = res.stdout.strip()
    assert held(path, lb) == {lb.archive(ts).name: lb.archive(ts).read_bytes()
                              for ts in (first, last)}
    said = f"removed the unfinished upload '{left[0]}' an interrupted run left in the webdav store"
    assert said in res.stderr, repr(res)
    wreck_tree(lb.src)
    lb.restore(first, env, extra=["--from", "webdav"])
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from webdav")


def test_temporaries_of_other_sidecars_are_never_removed(lb, dav):
    """Sidecars with their own state directories (so their own run locks) share one WebDAV
    directory. A temporary that sidecar B's killed run left, and one that sidecar C's run
    is still writing, survive sidecar A's runs: A removes only what its own record names.
    C finishes its archive, and B's next run removes B's temporary."""
    path, env = dav
    env = {**env, "BACKUP_LOCAL_PATH": None}
    b = {**env, "BACKUP_STATE_DIR": str(lb.tmp / "state-b")}
    c = {**env, "BACKUP_STATE_DIR": str(lb.tmp / "state-c")}
    res = lb.run(["backup"], {**b, "LIFEBOAT_FAULT": "webdav.move:kill"}, check=False)
    assert res.returncode == -signal.SIGKILL, repr(res)
    dead = temporaries(path, lb)
    assert len(dead) == 1, dead
    p = lb.popen(["backup"], {**c, "LIFEBOAT_FAULT": "webdav.move:stop"},
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def stopped():
            with open(f"/proc/{p.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "T"
        wait_until(lambda: p.poll() is not None or stopped(), "C to stop before its MOVE")
        assert p.poll() is None, p.stderr.read().decode(errors="replace")
        live = [n for n in temporaries(path, lb) if n not in dead]
        assert len(live) == 1, temporaries(path, lb)
        # C named its archive by the second it started in: A's runs come in a later second,
        # or A would take C's name and C's MOVE would rightly refuse to replace A's archive
        # (a wait on the clock, not on how fast anything runs).
        named_by = int(time.time())
        wait_until(lambda: int(time.time()) >= named_by + 2, "the clock to pass C's second")
        stamps = [lb.backup(env), lb.backup(env)]
        assert sorted(temporaries(path, lb)) == sorted(dead + live)
        os.kill(p.pid, signal.SIGCONT)
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
            p.wait()
    assert p.returncode == 0, err.decode(errors="replace")
    stamps.append(out.decode().strip())
    assert temporaries(path, lb) == dead
    stamps.append(lb.backup(b))
    assert temporaries(path, lb) == []
    assert sorted(held(path, lb)) == sorted(f"{lb.NAME}-{ts}.tar.gz.gpg" for ts in stamps)
    for ts in stamps:
        lb.run(["verify", ts], env)


def test_server_that_dropped_the_body(lb, dav):
    """A server that answers a chunked PUT with success but keeps fewer bytes (simulated:
    the size it reports is taken as 0): the run fails naming the sizes, the temporary is
    deleted, the local copy kept."""
    path, env = dav
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": "webdav.size:fail"}, check=EXIT_STORE)
    assert "the server kept 0 of its" in res.stderr and "webdav" in res.stderr, repr(res)
    assert held(path, lb) == {}
    assert len([n for n in os.listdir(lb.backup_dir) if not n.startswith(".")]) == 1


def test_server_killed_mid_upload(lb, tmp_path):
    """Apache killed while the archive streams to it (Lifeboat stopped at a fault point
    meanwhile, so the upload is in flight): exit 5 naming webdav, the local copy kept, and
    after a restart nothing of that run is on the server."""
    s = lbservers.Apache()
    try:
        s.start()
    except lbservers.Unavailable as e:
        lbservers.unavailable(str(e))
    try:
        (s.dav / "b").mkdir()
        os.chown(s.dav / "b", s.dav.stat().st_uid, s.dav.stat().st_gid)
        env = {**dav_env(s, "b"), "LIFEBOAT_FAULT": "webdav.write@3:stop"}
        p = lb.popen(["backup"], env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            def stopped():
                with open(f"/proc/{p.pid}/stat") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "T"
            wait_until(stopped, "lifeboat to stop at the fault point")
            s.stop()
            os.kill(p.pid, signal.SIGCONT)
            out, err = p.communicate(timeout=300)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        err = err.decode()
        assert p.returncode == EXIT_STORE, err
        assert "webdav" in err and s.url in err, err
        assert len([n for n in os.listdir(lb.backup_dir) if not n.startswith(".")]) == 1
        s.start()
        d = s.dav / "b" / lb.NAME
        left = os.listdir(d) if d.exists() else []
        assert [n for n in left if not n.startswith(".")] == [], left
    finally:
        s.cleanup()


def test_roundtrip_rclone_serve_webdav(lb, rclone_webdav_server):
    """A second implementation of the protocol: `rclone serve webdav` (chunked PUT, MOVE,
    PROPFIND of its own)."""
    s = rclone_webdav_server
    (s.dav / "b").mkdir()
    env = {**dav_env(s, "b"), "BACKUP_KEEP_LAST": "1"}
    orig = lb.snap()
    first = lb.backup(env)
    ts = lb.backup(env)
    local = lb.archive(ts)
    assert held(s.dav / "b", lb) == {local.name: local.read_bytes()}
    assert first != ts
    data = read_json_list(lb.run(["list", "--json"], env))
    assert [e["stores"] for e in data] == [["local", "webdav"]]
    wreck_tree(lb.src)
    lb.restore(ts, env, extra=["--from", "webdav"])
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from rclone serve webdav")


def test_full_remote_disk(lb, apache_server, tmpfs_mount):
    """The DAV directory on a 1 MiB tmpfs, the archive larger: the server runs out of space
    mid-PUT. Exit 5, one line naming the webdav store and why, nothing of the archive (final
    or temporary) left on the server, the local copy kept."""
    base = "f-" + uuid.uuid4().hex[:12]
    small = tmpfs_mount(apache_server.dav / base, size="1m")
    os.chown(small, apache_server.dav.stat().st_uid, apache_server.dav.stat().st_gid)
    env = dav_env(apache_server, base)
    res = lb.run(["backup"], env, check=EXIT_STORE)
    line = one_line_error(res)
    assert "webdav" in line and f"{apache_server.url}/{base}" in line, line
    assert "out of space" in line, line
    assert apache_server.password not in res.stderr
    ts = res.stdout.strip()
    assert lb.archive(ts).is_file()
    assert held(small, lb) == {}, "nothing partial may stay visible"
