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
    ] + BAD_VALUES


S3 = {"BACKUP_S3_BUCKET": "lb-bucket", "BACKUP_S3_ACCESS_KEY": "AKIDEXAMPLE",
      "BACKUP_S3_SECRET_KEY": "wJalrXUtnFEMI-secret", "BACKUP_S3_ENDPOINT": "http://127.0.0.1:9"}


def _s3(**kw):
    return lambda lb: dict(S3, **kw)


def _pg(uri):
    return lambda lb: {"BACKUP_POSTGRES": uri}


def _env(**kw):
    return lambda lb: kw


# Refused at configuration time (issue 12, section 7): (id, env, variable named).
BAD_VALUES = [
    ("dirs-name-300", lambda lb: {"BACKUP_DIRS": f"{lb.src}:" + "n" * 300}, "BACKUP_DIRS"),
    ("dirs-name-129", lambda lb: {"BACKUP_DIRS": f"{lb.src}:" + "n" * 129}, "BACKUP_DIRS"),
    ("files-name-120k", lambda lb: {"BACKUP_FILES": f"{lb.single}:" + "n" * (120 << 10)},
     "BACKUP_FILES"),
    ("s3-endpoint-port-0", _s3(BACKUP_S3_ENDPOINT="http://127.0.0.1:0"), "BACKUP_S3_ENDPOINT"),
    ("s3-endpoint-port-65536", _s3(BACKUP_S3_ENDPOINT="http://127.0.0.1:65536"),
     "BACKUP_S3_ENDPOINT"),
    ("s3-endpoint-port-99999", _s3(BACKUP_S3_ENDPOINT="https://minio:99999/"),
     "BACKUP_S3_ENDPOINT"),
    ("s3-bucket-upper", _s3(BACKUP_S3_BUCKET="My-Bucket"), "BACKUP_S3_BUCKET"),
    ("s3-bucket-underscore", _s3(BACKUP_S3_BUCKET="my_bucket"), "BACKUP_S3_BUCKET"),
    ("s3-bucket-leading-dash", _s3(BACKUP_S3_BUCKET="-bucket"), "BACKUP_S3_BUCKET"),
    ("s3-bucket-trailing-dot", _s3(BACKUP_S3_BUCKET="bucket."), "BACKUP_S3_BUCKET"),
    ("s3-bucket-dotdot", _s3(BACKUP_S3_BUCKET="my..bucket"), "BACKUP_S3_BUCKET"),
    ("s3-bucket-ip", _s3(BACKUP_S3_BUCKET="192.168.5.4"), "BACKUP_S3_BUCKET"),
    ("s3-bucket-64", _s3(BACKUP_S3_BUCKET="b" * 64), "BACKUP_S3_BUCKET"),
    ("s3-bucket-2", _s3(BACKUP_S3_BUCKET="ab"), "BACKUP_S3_BUCKET"),
    ("pg-no-host", _pg("postgresql:///app"), "BACKUP_POSTGRES"),
    ("pg-no-host-user", _pg("postgresql://u:pw@/app"), "BACKUP_POSTGRES"),
    ("pg-no-host-port", _pg("postgresql://u:pw@:5432/app"), "BACKUP_POSTGRES"),
    ("pg-db-64", _pg("postgresql://u:pw@db:5432/" + "d" * 64), "BACKUP_POSTGRES"),
    ("mongo-db-64", lambda lb: {"BACKUP_MONGODB": "mongodb://u:pw@db/" + "d" * 64},
     "BACKUP_MONGODB"),
    ("webhook-no-host", _env(BACKUP_SUCCESS_WEBHOOK="http:///hook/t0ken"),
     "BACKUP_SUCCESS_WEBHOOK"),
    ("webhook-only-port", _env(BACKUP_START_WEBHOOK="https://:8443/hook/t0ken"),
     "BACKUP_START_WEBHOOK"),
    ("webhook-user-no-host", _env(BACKUP_FAILURE_WEBHOOK="https://user@/t0ken"),
     "BACKUP_FAILURE_WEBHOOK"),
    ("webhook-port-0", _env(BACKUP_SUCCESS_WEBHOOK="http://hooks:0/t0ken"),
     "BACKUP_SUCCESS_WEBHOOK"),
    ("webhook-port-big", _env(BACKUP_SUCCESS_WEBHOOK="http://hooks:70000/t0ken"),
     "BACKUP_SUCCESS_WEBHOOK"),
    ("webhook-port-word", _env(BACKUP_SUCCESS_WEBHOOK="http://hooks:http/t0ken"),
     "BACKUP_SUCCESS_WEBHOOK"),
    ("level-lead-space", _env(BACKUP_COMPRESSION_LEVEL=" 6"), "BACKUP_COMPRESSION_LEVEL"),
    ("level-trail-space", _env(BACKUP_COMPRESSION_LEVEL="6 "), "BACKUP_COMPRESSION_LEVEL"),
    ("level-plus", _env(BACKUP_COMPRESSION_LEVEL="+6"), "BACKUP_COMPRESSION_LEVEL"),
    ("threads-space", _env(BACKUP_COMPRESSION_THREADS=" 2"), "BACKUP_COMPRESSION_THREADS"),
    ("keep-daily-space", _env(BACKUP_KEEP_DAILY=" 3"), "BACKUP_KEEP_DAILY"),
    ("retention-days-tab", _env(BACKUP_RETENTION_DAYS="\t7"), "BACKUP_RETENTION_DAYS"),
    ("stop-wait-plus", _env(BACKUP_STOP_WAIT="+2"), "BACKUP_STOP_WAIT"),
    ("lock-timeout-space", _env(BACKUP_LOCK_TIMEOUT=" 30m"), "BACKUP_LOCK_TIMEOUT"),
    ("lock-timeout-minus", _env(BACKUP_LOCK_TIMEOUT="-5"), "BACKUP_LOCK_TIMEOUT"),
    ("metrics-port-space", _env(BACKUP_METRICS_ADDR="127.0.0.1: 9090"), "BACKUP_METRICS_ADDR"),
    ("metrics-host-space", _env(BACKUP_METRICS_ADDR=" 127.0.0.1:9090"), "BACKUP_METRICS_ADDR"),
    ("part-size-space", _s3(BACKUP_S3_PART_SIZE=" 16M"), "BACKUP_S3_PART_SIZE"),
    ("s3-timeout-space", _s3(BACKUP_S3_TIMEOUT=" 60"), "BACKUP_S3_TIMEOUT"),
    ("s3-timeout-zero", _s3(BACKUP_S3_TIMEOUT="0"), "BACKUP_S3_TIMEOUT"),
    # what `backup` refused but `check` accepted
    ("key-line-break", _env(BACKUP_ENCRYPTION_KEY_FILE=None,
                            BACKUP_ENCRYPTION_KEY="first line\nsecond line"),
     "BACKUP_ENCRYPTION_KEY"),
    ("docker-host-bogus", _env(BACKUP_STOP_SERVICES="app", DOCKER_HOST="bogus://x"),
     "DOCKER_HOST"),
    ("docker-host-bad-port", _env(BACKUP_STOP_SERVICES="app", DOCKER_HOST="tcp://proxy:0"),
     "DOCKER_HOST"),
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
    # values are echoed cut short: a 120 KiB name makes a short line
    assert len(lines[0]) < 1000, f"error line of {len(lines[0])} bytes"
    assert res.stdout.strip() == "" or cmd == "check", repr(res)
    assert all_entries(lb.store) == store_before, "config error wrote to the store"
    assert non_dir_entries(lb.store) == []
    assert not (lb.tmp / "state").exists(), "config error created the state directory"
    assert lb.passphrase not in res.stdout + res.stderr
    assert "t0ken" not in res.stderr and "pw@" not in res.stderr, "a secret was printed"


LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d lifeboat\[\d+\] \w+: ")


def _first_error(res):
    lines = res.stderr_lines()
    return LOG_PREFIX.sub("", lines[0]) if lines else ""


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_check_refuses_what_backup_refuses(lb, case):
    """`check` and `backup` share one validation: same exit code, same first error line."""
    _, make_env, _ = case
    env = make_env(lb)
    chk = lb.run(["check"], env, check=False)
    bak = lb.run(["backup"], env, check=False)
    assert (chk.returncode, _first_error(chk)) == (bak.returncode, _first_error(bak)), \
        f"check and backup disagree:\n{chk!r}\n{bak!r}"
    assert bak.returncode == EXIT_CONFIG, repr(bak)
    assert non_dir_entries(lb.store) == []


@pytest.mark.parametrize("make_env", [
    _env(BACKUP_COMPRESSION_LEVEL="6"),
    lambda lb: {"BACKUP_DIRS": f"{lb.src}:" + "n" * 128},
    _env(BACKUP_SUCCESS_WEBHOOK="http://hooks:8080/t0ken",
         BACKUP_FAILURE_WEBHOOK="https://user:pw@[::1]:65535/x?y=1"),
    _env(BACKUP_POSTGRES="postgresql://u:pw@db/" + "d" * 63,
         BACKUP_MONGODB="mongodb://u:pw@db/" + "m" * 63),
    _pg("postgresql://u:pw@/app?host=/run/postgresql"),
    _s3(BACKUP_S3_BUCKET="my.bucket-2", BACKUP_S3_ENDPOINT="http://127.0.0.1:65535",
        BACKUP_S3_TIMEOUT="2m"),
    _env(BACKUP_STOP_SERVICES="app", DOCKER_HOST="tcp://proxy:2375"),
], ids=["level", "name-128", "webhooks", "db-names-63", "pg-socket-dir", "s3", "docker-tcp"])
def test_valid_edges_pass_check(lb, make_env):
    """The limits themselves are accepted."""
    lb.run(["check"], make_env(lb))


def test_unknown_variable_warns(lb):
    res = lb.run(["check"], {"BACKUP_FOO": "1"})
    assert "BACKUP_FOO" in res.stderr, repr(res)
    res = lb.run(["backup"], {"BACKUP_FOO": "1"})
    assert "BACKUP_FOO" in res.stderr, repr(res)
    assert len(non_dir_entries(lb.store)) == 1
    # and no warning without it
    res = lb.run(["check"])
    assert "BACKUP_FOO" not in res.stderr



README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def _readme_variable_table():
    """README.md's table of variables: from its header line to the first blank line."""
    with open(README, encoding="utf-8") as f:
        lines = f.read().split("\n")
    start = next(i for i, l in enumerate(lines) if l.startswith("| Variable |"))
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    return lines[start:end]


def _rows(table):
    """{name: (default, secret)} from the Markdown rows after the header."""
    rows = {}
    for line in table[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def test_readme_variables_are_the_table(lb):
    """README.md's variable table is what `check --variables` prints from the table."""
    res = lb.run(["check", "--variables"], {"BACKUP_NAME": None})
    table = res.stdout.rstrip("\n").split("\n")
    readme = _readme_variable_table()
    assert _rows(readme) == _rows(table), "README.md's variables differ from the table"
    assert readme == table, "README.md's variable table differs from `check --variables`"
    rows = _rows(table)
    assert rows["BACKUP_ENCRYPTION_KEY"][1] == "yes, also `BACKUP_ENCRYPTION_KEY_FILE`"
    assert rows["BACKUP_S3_PART_SIZE"] == ("`16M`", "")
    assert {"TZ", "DOCKER_HOST", "BACKUP_NAME"} <= set(rows)


def test_table_rows_are_the_known_variables(lb):
    """Every row the table lists (and NAME_FILE for the secret ones) is known to the loader,
    with no warning; a name outside the table is warned about."""
    rows = _rows(lb.run(["check", "--variables"]).stdout.rstrip("\n").split("\n"))
    env, base = {}, lb.env(None)
    for name, (_default, secret) in rows.items():
        for var in [name, name + "_FILE"] if "_FILE" in secret else [name]:
            if var.startswith("BACKUP_") and var not in base:
                env[var] = ""
    res = lb.run(["check"], env)
    assert "unknown variable" not in res.stderr, repr(res)
    res = lb.run(["check"], {"BACKUP_DEBUG_FILE": "/nonexistent"})
    assert "unknown variable BACKUP_DEBUG_FILE" in res.stderr, repr(res)


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
