"""Configuration validation, `check`, and the command-line surface."""

import os
import re

import pytest

from conftest import EXIT_CONFIG, EXIT_USAGE, all_entries, assert_untouched, non_dir_entries


def _cases():
    """(id, env changes as a function of lb, variable that must be named)."""
    return [
        ("name-missing", lambda lb: {"BACKUP_NAME": None}, "BACKUP_NAME"),
        ("name-empty", lambda lb: {"BACKUP_NAME": ""}, "BACKUP_NAME"),
        ("name-slash", lambda lb: {"BACKUP_NAME": "a/b"}, "BACKUP_NAME"),
        ("name-dotdot", lambda lb: {"BACKUP_NAME": ".."}, "BACKUP_NAME"),
        ("name-dot", lambda lb: {"BACKUP_NAME": "."}, "BACKUP_NAME"),
        ("name-space", lambda lb: {"BACKUP_NAME": "my backup"}, "BACKUP_NAME"),
        ("local-relative", lambda lb: {"BACKUP_LOCAL_PATH": "store"}, "BACKUP_LOCAL_PATH"),
        ("local-missing", lambda lb: {"BACKUP_LOCAL_PATH": str(lb.tmp / "nope")},
         "BACKUP_LOCAL_PATH"),
        ("dirs-no-name", lambda lb: {"BACKUP_DIRS": str(lb.src)}, "BACKUP_DIRS"),
        ("dirs-empty-name", lambda lb: {"BACKUP_DIRS": f"{lb.src}:"}, "BACKUP_DIRS"),
        ("dirs-relative", lambda lb: {"BACKUP_DIRS": "data/src:data"}, "BACKUP_DIRS"),
        ("dirs-missing-path", lambda lb: {"BACKUP_DIRS": f"{lb.tmp}/missing:data"},
         "BACKUP_DIRS"),
        ("dirs-duplicate", lambda lb: {"BACKUP_DIRS": f"{lb.src}:data,{lb.outside}:data"},
         "BACKUP_DIRS"),
        ("dirs-name-slash", lambda lb: {"BACKUP_DIRS": f"{lb.src}:da/ta"}, "BACKUP_DIRS"),
        ("dirs-name-bad-char", lambda lb: {"BACKUP_DIRS": f"{lb.src}:da ta"}, "BACKUP_DIRS"),
        ("files-no-name", lambda lb: {"BACKUP_FILES": str(lb.single)}, "BACKUP_FILES"),
        ("files-relative", lambda lb: {"BACKUP_FILES": "etc/single.conf:single"},
         "BACKUP_FILES"),
        ("files-name-slash", lambda lb: {"BACKUP_FILES": f"{lb.single}:a/b"}, "BACKUP_FILES"),
        ("dup-across-lists", lambda lb: {"BACKUP_FILES": f"{lb.single}:data"}, "BACKUP_"),
        ("key-and-keyfile", lambda lb: {"BACKUP_ENCRYPTION_KEY": "abc"},
         "BACKUP_ENCRYPTION_KEY"),
        ("no-key", lambda lb: {"BACKUP_ENCRYPTION_KEY_FILE": None}, "BACKUP_ENCRYPTION"),
        ("keyfile-missing", lambda lb: {"BACKUP_ENCRYPTION_KEY_FILE": str(lb.tmp / "nokey")},
         "BACKUP_ENCRYPTION_KEY_FILE"),
        ("encryption-bad", lambda lb: {"BACKUP_ENCRYPTION": "aes"}, "BACKUP_ENCRYPTION"),
        ("debug-maybe", lambda lb: {"BACKUP_DEBUG": "maybe"}, "BACKUP_DEBUG"),
    ]


CASES = _cases()


@pytest.mark.parametrize("cmd", ["backup", "check"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_config_errors(lb, case, cmd):
    _, make_env, var = case
    store_before = all_entries(lb.store)
    res = lb.run([cmd], make_env(lb), check=EXIT_CONFIG)
    assert var in res.stderr, f"stderr does not name {var}: {res!r}"
    lines = res.stderr_lines()
    assert len(lines) == 1, f"expected a one-line error: {res!r}"
    assert res.stdout.strip() == "" or cmd == "check", repr(res)
    assert all_entries(lb.store) == store_before, "config error wrote to the store"
    assert non_dir_entries(lb.store) == []
    assert lb.passphrase not in res.stdout + res.stderr


def test_unknown_variable_warns(lb):
    res = lb.run(["check"], {"BACKUP_FOO": "1"})
    assert "BACKUP_FOO" in res.stderr, repr(res)
    res = lb.run(["backup"], {"BACKUP_FOO": "1"})
    assert "BACKUP_FOO" in res.stderr, repr(res)
    assert len(non_dir_entries(lb.store)) == 1
    # and no warning without it
    res = lb.run(["check"])
    assert "BACKUP_FOO" not in res.stderr


DEBUG_LINE = re.compile(r"^\S+ \S+ lifeboat\[\d+\] debug: ", re.M)


def test_valid_debug_values(lb):
    for v in ("true", "false"):
        lb.run(["check"], {"BACKUP_DEBUG": v})
    # false: a whole backup logs no debug line; true: a run that starts gpg says so at debug
    # level (the line no other level prints).
    res = lb.run(["backup"], {"BACKUP_DEBUG": "false"})
    assert res.stderr.strip() and not DEBUG_LINE.search(res.stderr), res.stderr
    ts = res.stdout.strip()
    res = lb.run(["verify", ts], {"BACKUP_DEBUG": "true"})
    assert re.search(r"^\S+ \S+ lifeboat\[\d+\] debug: started 'gpg' as pid \d+$",
                     res.stderr, re.M), res.stderr
    res = lb.run(["verify", ts])
    assert not DEBUG_LINE.search(res.stderr), res.stderr


def test_check_redacts_key(lb):
    key = "S3cr3t-" + os.urandom(6).hex()
    for env in ({"BACKUP_ENCRYPTION_KEY_FILE": None, "BACKUP_ENCRYPTION_KEY": key},
                {"BACKUP_ENCRYPTION_KEY_FILE": None, "BACKUP_ENCRYPTION_KEY": key,
                 "BACKUP_DEBUG": "true"},
                {},
                {"BACKUP_DEBUG": "true"}):
        res = lb.run(["check"], env)
        out = res.stdout + res.stderr
        assert key not in out
        assert lb.passphrase not in out
        # it does print the configuration
        assert lb.NAME in out and str(lb.src) in out, repr(res)
    assert non_dir_entries(lb.store) == []


def test_check_does_not_back_up(lb):
    lb.run(["check"])
    assert non_dir_entries(lb.store) == []


def test_encryption_none_needs_no_key(lb):
    lb.run(["check"], {"BACKUP_ENCRYPTION": "none", "BACKUP_ENCRYPTION_KEY_FILE": None})


COMMANDS = ["backup", "list", "restore", "verify", "check", "version", "run", "status",
            "prune", "ls"]


@pytest.mark.parametrize("args,want", [
    (["version"], r"lifeboat \d+\.\d+\.\d+ \("),
    (["--version"], r"lifeboat \d+\.\d+\.\d+ \("),
    (["--help"], r"usage: lifeboat <command> \[options\]\n"),
    (["help", "restore"], r"usage: lifeboat restore TIMESTAMP "),
    *[([c, "--help"], rf"usage: lifeboat {c}[ \n]") for c in COMMANDS]])
def test_help_and_version(lb, args, want):
    # help must work and do nothing, even with no configuration at all: its own text on
    # stdout, nothing on stderr (no error, no warning), exit 0
    for env in ({k: None for k in lb.base_env() if k.startswith("BACKUP_")}, {}):
        res = lb.run(args, env)
        assert re.match(want, res.stdout), repr(res)
        assert res.stderr == "", repr(res)
        assert non_dir_entries(lb.store) == [], f"{args} did real work"
    if args == ["--help"]:
        for c in COMMANDS:
            assert re.search(rf"^  {c} ", res.stdout, re.M), (c, res.stdout)


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["restore"], ["verify"],
                                  ["backup", "--no-such-flag"], ["list", "--no-such-flag"]])
def test_usage_errors(lb, args):
    before = lb.snap_all()
    lb.run(args, check=EXIT_USAGE)
    assert non_dir_entries(lb.store) == []
    assert_untouched(before, lb.snap_all())
