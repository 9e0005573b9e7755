"""BACKUP_UPLOAD=after-local against a real MinIO (and Apache's WebDAV): the archive is
written to the local store alone, the post-read step (containers restarted, post commands)
runs, and only then is the finished local file uploaded to the other stores.

The order is proved with a fault point that holds the upload at a given byte
(`fanout.write.s3@N:stop` SIGSTOPs the process at its Nth write to the S3 store): while it
is held, the post command's marker must exist and the local archive must be complete and
verify, and S3 must show nothing. In the `stream` mode the same hold comes while the
sources are still being read, so the marker is missing (the test fails there).
"""

import json
import os
import signal
import socket
import subprocess
import threading

import pytest

from conftest import (EXIT_CONFIG, EXIT_STORE, assert_same_tree, read_json_list,
                      wreck_tree)
from test_commands import sh
from test_keys import keys, sign_env, verify_env  # noqa: F401 (keys: a fixture)
from test_s3 import key_of, object_bytes, objects, s3, uploads  # noqa: F401
from test_sftp import sftp  # noqa: F401 (a fixture)
from test_webdav import dav, held  # noqa: F401 (dav: a fixture)
from waiting import HANG, wait_until

AFTER = {"BACKUP_UPLOAD": "after-local", "BACKUP_S3_PART_SIZE": "5M"}
CHUNK = 256 * 1024  # what one fan-out write carries (src/backup.c)


def big_source(lb, mib=30):
    """Incompressible bytes, so the archive is about as large as the source."""
    with open(lb.src / "big" / "huge.bin", "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def stopped_or_gone(proc):
    return proc.poll() is not None or state(proc.pid) == "T"


def local_archives(lb):
    """Every name in the local store's directory (hidden temporaries too)."""
    return sorted(os.listdir(lb.backup_dir)) if lb.backup_dir.exists() else []


def ts_of(name, lb):
    return name[len(lb.NAME) + 1:].split(".", 1)[0]


def run_held(lb, env, fault):
    """Start a backup with LIFEBOAT_FAULT=fault; wait until it is stopped there (or ended)."""
    proc = lb.popen(["backup"], {**env, "LIFEBOAT_FAULT": fault},
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: stopped_or_gone(proc), f"lifeboat to reach {fault}", interval=0.02)
    return proc


@pytest.mark.parametrize("mode", ["after-local"])
def test_post_step_runs_before_the_upload(lb, s3, mode):
    """Held at 10 MiB into the S3 upload of a 30 MiB archive: the post command already
    ran and the local archive is complete (it verifies) while S3 holds nothing yet; let
    go, the S3 object is the local file's bytes and nothing is left in progress."""
    c, bucket, env = s3
    big_source(lb)
    orig = lb.snap()
    marker = lb.tmp / "post-marker"
    env = {**env, **AFTER, "BACKUP_UPLOAD": mode,
           "BACKUP_POST_COMMANDS": sh(f"touch {marker}")}
    proc = run_held(lb, env, f"fanout.write.s3@{10 * 1024 * 1024 // CHUNK}:stop")
    try:
        assert proc.poll() is None, "lifeboat ended before the upload was held: " + \
            proc.stderr.read().decode(errors="replace")
        # The restart step ran before the upload finished: the proof of the mode.
        assert marker.exists(), "the post step had not run when the upload was held"
        names = local_archives(lb)
        assert len(names) == 1 and not names[0].startswith("."), names
        ts = ts_of(names[0], lb)
        lb.run(["verify", ts, "--from", "local"], env)
        assert objects(c, bucket) == {}, "an object is visible before the upload completed"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 0, err.decode(errors="replace")
    assert out.decode().strip() == ts
    local = lb.archive(ts)
    assert objects(c, bucket) == {key_of(lb, ts): local.stat().st_size}
    assert object_bytes(c, bucket, key_of(lb, ts)) == local.read_bytes()
    assert uploads(c, bucket) == []
    # restored from S3 alone: the tree as it was
    os.unlink(local)
    wreck_tree(lb.src)
    lb.restore(ts, env, extra=["--from", "s3"])
    assert_same_tree(orig["src"], lb.snap()["src"], "restored from s3")


class CutOnce:
    """A TCP proxy to MinIO that resets, once, the first connection to have carried
    `after` bytes towards the server (so mid-part), noting whether `marker` existed then;
    it counts the CreateMultipartUpload requests (`?uploads`) it forwarded."""

    def __init__(self, target, after, marker):
        self.target, self.after, self.marker = target, after, marker
        self.cut = None  # None: not yet; else whether the marker existed at the cut
        self.creates = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(self.target)
            threading.Thread(target=self._up, args=(c, u), daemon=True).start()
            threading.Thread(target=self._down, args=(u, c), daemon=True).start()

    def _up(self, c, u):
        sent, tail = 0, b""
        try:
            while True:
                buf = c.recv(65536)
                if not buf:
                    break
                with self.lock:
                    self.creates += (tail + buf).count(b"?uploads")
                    tail = buf[-16:]
                    cut = self.cut is None and sent + len(buf) >= self.after
                    if cut:
                        self.cut = self.marker.exists()
                if cut:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                    break
                u.sendall(buf)
                sent += len(buf)
        except OSError:
            pass
        for s in (c, u):
            s.close()

    def _down(self, u, c):
        try:
            while True:
                buf = u.recv(65536)
                if not buf:
                    break
                c.sendall(buf)
        except OSError:
            pass

    def close(self):
        self.sock.close()


def test_a_cut_part_is_retried_alone(lb, s3):
    """The connection of a part is reset mid-part during the upload phase (the post
    command already ran): that part is sent again and the upload completes, with one
    CreateMultipartUpload only (the upload was not restarted); the object is the local
    file's bytes."""
    c, bucket, env = s3
    big_source(lb, 20)
    marker = lb.tmp / "post-marker"
    host, port = env["BACKUP_S3_ENDPOINT"].split("://", 1)[1].rsplit(":", 1)
    proxy = CutOnce((host, int(port)), 3 * 1024 * 1024, marker)
    try:
        ts = lb.backup({**env, **AFTER, "BACKUP_S3_ENDPOINT": proxy.endpoint,
                        "BACKUP_POST_COMMANDS": sh(f"touch {marker}")})
    finally:
        proxy.close()
    assert proxy.cut is True, "the cut came before the post step (or never)"
    assert proxy.creates == 1, f"{proxy.creates} multipart uploads were started"
    local = lb.archive(ts)
    assert object_bytes(c, bucket, key_of(lb, ts)) == local.read_bytes()
    assert uploads(c, bucket) == []


def test_killed_mid_upload_leaves_no_object_and_next_run_is_fine(lb, s3):
    """SIGKILL 10 MiB into the upload phase: the local archive is complete and verifies,
    S3 lists no object (the unfinished multipart upload is invisible), and the next run
    backs up normally: the killed run's archive is in local only, the new one in both."""
    c, bucket, env = s3
    big_source(lb)
    env = {**env, **AFTER}
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT":
                              f"fanout.write.s3@{10 * 1024 * 1024 // CHUNK}:kill"},
                 check=-signal.SIGKILL)
    names = local_archives(lb)
    assert len(names) == 1 and not names[0].startswith("."), names
    first = ts_of(names[0], lb)
    lb.run(["verify", first, "--from", "local"], env)
    assert objects(c, bucket) == {}, "a partial object is visible"
    second = lb.backup(env)
    data = read_json_list(lb.run(["list", "--json"], env))
    assert sorted((e["timestamp"], e["stores"]) for e in data) == \
        [(first, ["local"]), (second, ["local", "s3"])], res
    assert object_bytes(c, bucket, key_of(lb, second)) == lb.archive(second).read_bytes()
    lb.run(["verify", second, "--from", "s3"], env)


def test_sigterm_mid_upload_aborts_it_and_keeps_local(lb, s3):
    """SIGTERM while the upload is held at 10 MiB: exit 130, the multipart upload is
    aborted (nothing in S3, not even an unfinished upload), the local archive verifies."""
    c, bucket, env = s3
    big_source(lb)
    env = {**env, **AFTER}
    proc = run_held(lb, env, f"fanout.write.s3@{10 * 1024 * 1024 // CHUNK}:stop")
    assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
    assert uploads(c, bucket), "no multipart upload under way"
    proc.send_signal(signal.SIGTERM)  # delivered when it continues
    os.kill(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 130, err.decode(errors="replace")
    assert objects(c, bucket) == {} and uploads(c, bucket) == []
    names = local_archives(lb)
    assert len(names) == 1 and not names[0].startswith("."), names
    lb.run(["verify", ts_of(names[0], lb), "--from", "local"], env)


def test_upload_failure_exit_5_local_kept_nothing_partial(lb, s3):
    """The S3 store fails mid-upload: exit 5 with one line naming s3 and the local copy,
    the local archive verifies and is listed there only, the multipart upload is aborted,
    and the state file counts the failure against s3 only."""
    c, bucket, env = s3
    big_source(lb, 20)
    env = {**env, **AFTER}
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": "fanout.write.s3@30:fail"},
                 check=EXIT_STORE)
    errs = [l for l in res.stderr.splitlines() if " error: " in l]
    assert len(errs) == 1, res
    assert "the s3 copy failed (kept in local)" in errs[0], res
    assert objects(c, bucket) == {} and uploads(c, bucket) == []
    data = read_json_list(lb.run(["list", "--json"], env))
    assert [e["stores"] for e in data] == [["local"]]
    lb.run(["verify", data[0]["timestamp"], "--from", "local"], env)
    st = json.loads((lb.tmp / "state" / f"{lb.NAME}.state.json").read_text())
    assert st["stores"]["s3"]["failures"] == 1 and st["stores"]["s3"]["last_success"] == 0
    assert st["stores"]["local"]["failures"] == 0 and st["stores"]["local"]["last_success"]


def test_one_remote_fails_the_other_keeps_it(lb, s3, dav):
    """local + S3 + WebDAV, S3 failing: WebDAV still gets the whole archive (its final
    name only), exit 5 names s3 and says the archive is kept in local and webdav."""
    c, bucket, env = s3
    path, denv = dav
    big_source(lb, 12)
    env = {**env, **denv, **AFTER}
    res = lb.run(["backup"], {**env, "LIFEBOAT_FAULT": "fanout.write.s3@10:fail"},
                 check=EXIT_STORE)
    errs = [l for l in res.stderr.splitlines() if " error: " in l]
    assert len(errs) == 1 and "the s3 copy failed (kept in local, webdav)" in errs[0], res
    ts = res.stdout.strip()
    local = lb.archive(ts)
    assert held(path, lb) == {local.name: local.read_bytes()}
    assert objects(c, bucket) == {} and uploads(c, bucket) == []


def test_sftp_upload_after_the_post_step_appears_whole(lb, sftp):  # noqa: F811
    """local + SFTP, held 10 MiB into the SFTP upload: the post command ran, the local
    archive verifies, and the server holds no file under the archive's name yet (only
    the hidden temporary); let go, the server's file is the local file's bytes, alone."""
    r, env = sftp
    big_source(lb, 20)
    marker = lb.tmp / "post-marker"
    env = {**env, **AFTER, "BACKUP_POST_COMMANDS": sh(f"touch {marker}")}
    proc = run_held(lb, env, f"fanout.write.sftp@{10 * 1024 * 1024 // CHUNK}:stop")
    try:
        assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
        assert marker.exists(), "the post step had not run when the upload was held"
        names = local_archives(lb)
        assert len(names) == 1 and not names[0].startswith("."), names
        ts = ts_of(names[0], lb)
        lb.run(["verify", ts, "--from", "local"], env)
        assert names[0] not in r.files(lb.NAME), "the archive is visible before its end"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 0, err.decode(errors="replace")
    local = lb.archive(ts)
    assert r.files(lb.NAME) == [local.name]
    assert (r.dir / lb.NAME / local.name).read_bytes() == local.read_bytes()


def test_signed_after_local_signature_in_every_store(lb, s3, keys):  # noqa: F811
    """Signing: killed at the upload's first write, the local archive and its .sig are
    both in place already (the signature verifies) and S3 is empty; a normal run puts
    the .sig in S3 with the uploaded archive, verify --from s3 checks it, and retention
    (keep the last one) prunes both stores alike."""
    c, bucket, env = s3
    env = {**env, **AFTER, **sign_env(keys)}
    lb.run(["backup"], {**env, "LIFEBOAT_FAULT": "fanout.write.s3@1:kill"},
           check=-signal.SIGKILL)
    names = local_archives(lb)
    assert len(names) == 2 and names[1] == names[0] + ".sig", names
    lb.run(["verify", ts_of(names[0], lb), "--from", "local"], {**env, **verify_env(keys)})
    assert objects(c, bucket) == {}
    for n in names:
        os.unlink(lb.backup_dir / n)
    first = lb.backup(env)
    second = lb.backup(env)
    key = key_of(lb, second)
    assert set(objects(c, bucket)) == {key_of(lb, first), key_of(lb, first) + ".sig",
                                       key, key + ".sig"}
    assert object_bytes(c, bucket, key + ".sig") == \
        open(str(lb.archive(second)) + ".sig", "rb").read()
    lb.run(["verify", second, "--from", "s3"], {**env, **verify_env(keys)})
    lb.run(["prune"], {**env, "BACKUP_KEEP_LAST": "1"})
    assert set(objects(c, bucket)) == {key, key + ".sig"}
    assert local_archives(lb) == sorted([lb.archive(second).name,
                                         lb.archive(second).name + ".sig"])


def test_after_local_needs_a_local_store(lb, s3):
    """Without BACKUP_LOCAL_PATH (or with a wrong value): exit 3 at load, one line naming
    the variable, from `backup` and from `check` alike; nothing is uploaded."""
    c, bucket, env = s3
    for extra, word in (({"BACKUP_LOCAL_PATH": None, "BACKUP_UPLOAD": "after-local"},
                         "BACKUP_LOCAL_PATH"),
                        ({"BACKUP_UPLOAD": "later"}, "'later'")):
        for cmd in (["backup"], ["check"]):
            res = lb.run(cmd, {**env, **extra}, check=EXIT_CONFIG)
            errs = [l for l in res.stderr.splitlines() if "error" in l]
            assert len(errs) == 1 and "BACKUP_UPLOAD" in errs[0] and word in errs[0], res
    assert objects(c, bucket) == {} and uploads(c, bucket) == []
    res = lb.run(["check"], {**env, **AFTER})
    assert "after-local" in res.stdout, res
