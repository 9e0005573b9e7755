"""BACKUP_PRE_COMMANDS / BACKUP_POST_COMMANDS (and the restore's) run in the sidecar
(`: command`): order, failure, timeout, quoting, output in the log, SIGTERM, webhook body.

Each test reads the outcome from the files the commands write and from the store, not only
from the log: a pre command's marker inside the archive proves it ran before the read, a
post command's marker proves it ran, an empty store proves nothing was stored."""

import os
import subprocess
import tarfile
import time

import pytest

from conftest import EXIT_CONFIG, EXIT_SOURCE, assert_no_archive, need_tool
from test_daemon import Hooks

PLAIN = {"BACKUP_ENCRYPTION": "none", "BACKUP_ENCRYPTION_KEY_FILE": None}


def members(lb, ts):
    with tarfile.open(lb.archive(ts, ".tar.gz"), "r:gz") as t:
        return {os.path.normpath(m.name): (t.extractfile(m).read() if m.isfile() else None)
                for m in t.getmembers()}


def sh(script):
    """A `: sh -c '...'` line: the script single-quoted (it must hold no single quote)."""
    assert "'" not in script
    return f": sh -c '{script}'"


def test_pre_command_runs_before_the_read(lb):
    """A pre command writes a marker into the source: the archive holds it, so it ran
    before the source was read; the post command ran after (its marker is not inside)."""
    pre_marker, post_marker = lb.src / "pre-marker", lb.tmp / "post-marker"
    ts = lb.backup({**PLAIN,
                    "BACKUP_PRE_COMMANDS": sh(f"echo ready > {pre_marker}"),
                    "BACKUP_POST_COMMANDS": sh(f"echo done > {post_marker}")})
    got = members(lb, ts)
    assert got["dirs/data/pre-marker"] == b"ready\n"
    assert post_marker.read_text() == "done\n"


def test_failing_pre_command_stores_nothing_and_post_still_runs(lb):
    post_marker = lb.tmp / "post-marker"
    second = lb.tmp / "second-pre"
    res = lb.run(["backup"], {**PLAIN,
                              "BACKUP_PRE_COMMANDS": sh("echo about to fail; exit 3") + "\n"
                                                     + sh(f"touch {second}"),
                              "BACKUP_POST_COMMANDS": sh(f"echo post > {post_marker}")},
                 check=EXIT_SOURCE)
    assert_no_archive(lb)
    assert not second.exists(), "a pre command after the failing one ran"
    assert post_marker.read_text() == "post\n"
    err = res.stderr
    assert "BACKUP_PRE_COMMANDS line 1" in err and "exited with status 3" in err, res
    assert "nothing was backed up" in err
    assert "about to fail" in err
    # the sources were never opened for reading
    assert "backing up dir" not in err
    assert res.stdout == ""


def test_missing_program_fails_like_a_failing_command(lb):
    post_marker = lb.tmp / "post-marker"
    res = lb.run(["backup"], {**PLAIN, "BACKUP_PRE_COMMANDS": ": no-such-program-lb --x",
                              "BACKUP_POST_COMMANDS": sh(f"touch {post_marker}")},
                 check=EXIT_SOURCE)
    assert_no_archive(lb)
    assert "could not run in the sidecar" in res.stderr
    assert "no-such-program-lb" in res.stderr
    assert post_marker.exists()


def test_timeout_kills_the_command_and_its_children(lb):
    """BACKUP_COMMAND_TIMEOUT: the command's whole process group is killed (here a shell
    and its background sleep); the run fails, nothing is stored, the post command ran."""
    pidfile, post_marker = lb.tmp / "sleep.pid", lb.tmp / "post-marker"
    res = lb.run(["backup"], {**PLAIN, "BACKUP_COMMAND_TIMEOUT": "1",
                              "BACKUP_PRE_COMMANDS":
                                  sh(f"sleep 600 & echo $! > {pidfile}; wait"),
                              "BACKUP_POST_COMMANDS": sh(f"touch {post_marker}")},
                 check=EXIT_SOURCE, timeout=120)
    assert "did not end within 1 s (BACKUP_COMMAND_TIMEOUT) and was killed" in res.stderr, res
    assert_no_archive(lb)
    assert post_marker.exists()
    pid = int(pidfile.read_text())
    # killed with its group: no such process any more (or a zombie reaped by init soon)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1][0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the command's child {pid} still runs after the timeout")


def test_a_command_ignoring_sigterm_is_killed(lb):
    res = lb.run(["backup"], {**PLAIN, "BACKUP_COMMAND_TIMEOUT": "1",
                              "BACKUP_PRE_COMMANDS": sh("trap \"\" TERM; while :; do sleep 1; done")},
                 check=EXIT_SOURCE, timeout=120)
    assert "was killed" in res.stderr
    assert_no_archive(lb)


def test_quoting_no_shell_no_redirection(lb):
    """`>` is an argument, `$HOME` is not expanded, quotes group words; only a command the
    user wrapped in `sh -c` sees a shell."""
    out = lb.tmp / "args"
    line = (f": sh -c 'printf \"%s\\n\" \"$@\" > {out}' sh a '>' b\\ c \"d \\\"e\\\"\" "
            f"'$HOME' \"\\$HOME\" '*' \"\" x>y")
    lb.backup({**PLAIN, "BACKUP_PRE_COMMANDS": line})
    assert out.read_text().split("\n")[:-1] == \
        ["a", ">", "b c", 'd "e"', "$HOME", "$HOME", "*", "", "x>y"]
    # a bare `>` never redirects: echo prints it, no file named after it appears
    res = lb.run(["backup"], {**PLAIN, "BACKUP_PRE_COMMANDS": ": echo one > two"})
    assert "[sidecar] one > two" in res.stderr
    assert not (lb.tmp / "two").exists()


def test_output_goes_to_the_log_line_by_line(lb):
    script = "echo first; echo second >&2; printf \"no newline\""
    res = lb.run(["backup"], {**PLAIN, "BACKUP_PRE_COMMANDS": sh(script),
                              "BACKUP_POST_COMMANDS": ": echo after"})
    log = (lb.tmp / "backup.log").read_text()
    for text in (res.stderr, log):
        lines = [ln.split("] info: ", 1)[1] for ln in text.splitlines() if "] info: [" in ln]
        assert lines == ["[sidecar] first", "[sidecar] second", "[sidecar] no newline",
                         "[sidecar] after"], text


def test_sigterm_during_the_read_still_runs_post_commands(lb):
    """SIGTERM delivered (strace -e inject) while the source directory is being opened for
    reading: the run is interrupted (130), nothing is stored, and the post command ran."""
    need_tool("strace")
    post_marker = lb.tmp / "post-marker"
    trace = lb.tmp / "strace.txt"
    env = lb.env({**PLAIN, "BACKUP_PRE_COMMANDS": ": true",
                  "BACKUP_POST_COMMANDS": sh(f"echo post > {post_marker}")})
    # LeakSanitizer (an ASan build) cannot run under ptrace; the rest of ASan can.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                 "detect_leaks=0"]))
    # The source directory's second openat is the walker's (the first is the check).
    p = subprocess.run(["strace", "-f", "-qq", "-o", str(trace), "-P", str(lb.src),
                        "-e", "trace=openat", "-e", "inject=openat:signal=SIGTERM:when=2",
                        str(lb.bin), "backup"], env=env, capture_output=True, text=True,
                       timeout=300, cwd=str(lb.tmp))
    assert p.returncode == 130, p.stderr
    assert "backing up dir" in p.stderr and "interrupted by signal 15" in p.stderr, p.stderr
    assert_no_archive(lb)
    assert post_marker.read_text() == "post\n"


def test_sigterm_during_a_pre_command_kills_it_and_runs_post(lb):
    """The pre command signals lifeboat itself (its parent) and then waits: lifeboat kills
    it, stores nothing, exits 130 and still runs the post command."""
    post_marker, after = lb.tmp / "post-marker", lb.tmp / "after-kill"
    res = lb.run(["backup"], {**PLAIN,
                              "BACKUP_PRE_COMMANDS": sh(f"kill -TERM $PPID; sleep 600; touch {after}"),
                              "BACKUP_POST_COMMANDS": sh(f"touch {post_marker}")},
                 check=130, timeout=120)
    assert "interrupted by signal 15 during the pre-backup command" in res.stderr, res
    assert_no_archive(lb)
    assert post_marker.exists() and not after.exists()


def test_failing_post_command_fails_a_run_whose_archive_stays(lb):
    res = lb.run(["backup"], {**PLAIN, "BACKUP_POST_COMMANDS": ": false"}, check=EXIT_SOURCE)
    assert "the backup succeeded, but post-backup command (BACKUP_POST_COMMANDS line 1) in " \
           "the sidecar exited with status 1" in res.stderr, res
    assert len(list(lb.backup_dir.iterdir())) == 1


def test_commands_in_the_webhook_body(lb):
    hooks = Hooks()
    try:
        lb.run(["backup"], {**PLAIN, "BACKUP_PRE_COMMANDS": ": true\n: sh -c 'exit 0'",
                            "BACKUP_POST_COMMANDS": ": false",
                            "BACKUP_FAILURE_WEBHOOK": hooks.url("/fail")}, check=EXIT_SOURCE)
        body = hooks.bodies("/fail")[0]
    finally:
        hooks.close()
    cmds = body["commands"]
    assert [(c["phase"], c["where"], c["origin"], c["command"], c["status"], c["exit_code"])
            for c in cmds] == [
        ("pre-backup", "sidecar", "BACKUP_PRE_COMMANDS line 1", "true", "ok", 0),
        ("pre-backup", "sidecar", "BACKUP_PRE_COMMANDS line 2", "sh -c 'exit 0'", "ok", 0),
        ("post-backup", "sidecar", "BACKUP_POST_COMMANDS line 1", "false", "failed", 1)]
    assert all(c["seconds"] >= 0 for c in cmds)


def test_restore_commands_around_the_swap(lb):
    """Pre-restore runs after verification and before the swap (it sees the old data);
    post-restore after it (it sees the restored data); a failing pre-restore replaces
    nothing."""
    ts = lb.backup(PLAIN)
    marker = lb.src / "restore-probe"
    marker.write_text("old\n")  # not in the backup: the restore removes it
    seen_pre, seen_post = lb.tmp / "seen-pre", lb.tmp / "seen-post"
    env = {**PLAIN,
           "BACKUP_PRE_RESTORE_COMMANDS": sh(f"cat {marker} > {seen_pre}"),
           "BACKUP_POST_RESTORE_COMMANDS": sh(f"test -e {marker} && echo present > {seen_post}"
                                               f" || echo gone > {seen_post}")}
    before = lb.snap_all()
    res = lb.run(["restore", ts, "--yes"], {**env, "BACKUP_PRE_RESTORE_COMMANDS": ": false"},
                 check=EXIT_SOURCE)
    assert "nothing was restored" in res.stderr
    assert lb.snap_all() == before  # nothing replaced
    assert seen_post.read_text() == "present\n"  # post-restore ran anyway
    lb.restore(ts, env)
    assert seen_pre.read_text() == "old\n"
    assert seen_post.read_text() == "gone\n"
    assert not marker.exists()


def test_verify_runs_no_commands(lb):
    ts = lb.backup(PLAIN)
    marker = lb.tmp / "ran"
    lb.run(["verify", ts], {**PLAIN, "BACKUP_PRE_RESTORE_COMMANDS": sh(f"touch {marker}")})
    assert not marker.exists()


@pytest.mark.parametrize("value,line,why", [
    ("echo hi", 1, "expected 'SERVICE: command'"),
    (": true\n\napp echo", 3, "expected 'SERVICE: command'"),
    (": echo 'open", 1, "single quote is not closed"),
    ("app: echo \"open", 1, "double quote is not closed"),
    (": echo x\\", 1, "ends with a backslash"),
    ("app:", 1, "there is no command"),
])
@pytest.mark.parametrize("var", ["BACKUP_PRE_COMMANDS", "BACKUP_POST_COMMANDS",
                                 "BACKUP_PRE_RESTORE_COMMANDS", "BACKUP_POST_RESTORE_COMMANDS"])
def test_bad_lines_are_configuration_errors(lb, var, value, line, why):
    marker = lb.tmp / "ran"
    env = {**PLAIN, var: value, "BACKUP_PRE_COMMANDS" if var != "BACKUP_PRE_COMMANDS"
           else "BACKUP_POST_COMMANDS": sh(f"touch {marker}")}
    for cmd in (["check"], ["backup"]):
        res = lb.run(cmd, env, check=EXIT_CONFIG)
        first = res.stderr_lines()[0]
        assert f"{var} line {line}" in first and why in first, res
    assert_no_archive(lb)
    assert not marker.exists()


def test_bad_timeout(lb):
    res = lb.run(["check"], {"BACKUP_COMMAND_TIMEOUT": "0"}, check=EXIT_CONFIG)
    assert "BACKUP_COMMAND_TIMEOUT" in res.stderr


def test_check_shows_the_commands(lb):
    res = lb.run(["check"], {"BACKUP_PRE_COMMANDS": "app: touch /data/x\n: echo '>' hi",
                             "BACKUP_POST_RESTORE_COMMANDS": ": true",
                             "BACKUP_COMMAND_TIMEOUT": "90s"})
    out = res.stdout
    assert "BACKUP_PRE_COMMANDS line 1, in 'app': touch /data/x" in out
    assert "BACKUP_PRE_COMMANDS line 2, in the sidecar: echo '>' hi" in out
    assert "BACKUP_POST_RESTORE_COMMANDS line 1, in the sidecar: true" in out
    assert "BACKUP_COMMAND_TIMEOUT 90s" in out


def test_a_container_command_without_an_engine_fails_before_anything(lb):
    post_marker = lb.tmp / "post"
    res = lb.run(["backup"], {**PLAIN, "DOCKER_HOST": "unix:///nonexistent/docker.sock",
                              "BACKUP_PRE_COMMANDS": "app: true",
                              "BACKUP_POST_COMMANDS": sh(f"touch {post_marker}")},
                 check=3)
    assert "needs the Docker engine" in res.stderr, res
    assert_no_archive(lb)
