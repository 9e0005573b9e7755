"""Redis in a container built from the Debian base, restored the container way: the
sidecar's restore stops the project's containers through the Docker engine, places the
snapshot atomically in the Redis data volume mounted into it (BACKUP_REDIS_DATA_DIR), and
starts them again. Every key is compared by DUMP (and its absolute expiry) after the
restore, with appendonly off and on (Redis 7's multi-part AOF, which takes precedence over
dump.rdb at start, replaced by one made of the snapshot)."""

import urllib.parse

import pytest

from conftest import REPO
from test_scenarios import DB_PASSWORD, Stack, wait_for

FAR = 4_102_444_800_000  # 2100-01-01 in ms

# Keys of every type; sets of integers and small hashes keep an encoding whose DUMP does
# not depend on a hash table's order, so DUMP compares them exactly.
FILL = """
local tag, n = ARGV[1], tonumber(ARGV[2])
for i = 1, n do redis.call('SET', 'k:' .. i, tag .. ':' .. i) end
for i = 1, n, 97 do redis.call('PEXPIREAT', 'k:' .. i, 4102444800000 + i) end
redis.call('HSET', 'hash', 'f1', 'a', 'f2', tag)
redis.call('RPUSH', 'list', tag .. '-1', tag .. '-2', tag .. '-3')
redis.call('SADD', 'set', 1, 2, 3, 42)
redis.call('ZADD', 'zset', 1.5, 'a', 2.5, tag)
redis.call('XADD', 'stream', '1000-1', 'tag', tag)
redis.call('SET', 'bin', '\\0\\255' .. tag)
return n
"""

# A digest over every key's name, DUMP and PEXPIRETIME, in key order, and the key count.
DIGEST = """
local keys = redis.call('KEYS', '*')
table.sort(keys)
local parts = {}
for _, k in ipairs(keys) do
  parts[#parts + 1] = k .. '\\n' .. redis.call('DUMP', k) .. '\\n' .. redis.call('PEXPIRETIME', k)
end
return #keys .. ' ' .. redis.sha1hex(table.concat(parts, '\\n'))
"""


def cli(s, *args):
    return s.run("exec", "-T", "redis", "sh", "-c",
                 'REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli --no-auth-warning "$@"', "cli",
                 *args).stdout.strip()


def digest(s):
    return cli(s, "EVAL", DIGEST, "0")


@pytest.mark.parametrize("appendonly", ["no", "yes"])
def test_redis_restore_into_its_container(image, tmp_path, appendonly):
    uri = f"redis://:{urllib.parse.quote(DB_PASSWORD, safe='')}@redis:6379"
    env = {"BACKUP_NAME": "rdexec", "BACKUP_LOCAL_PATH": "/backups-local",
           "BACKUP_ENCRYPTION_KEY": "e2e redis passphrase", "BACKUP_REDIS": uri,
           "BACKUP_REDIS_DATA_DIR": "/redis-data", "TZ": "UTC"}
    s = Stack(tmp_path, REPO / "tests" / "e2e" / "redis.yml", env)
    s.proc_env["LIFEBOAT_IMAGE"] = image
    s.proc_env["REDIS_APPENDONLY"] = appendonly
    try:
        s.run("up", "-d", "--build", timeout=1800)
        wait_for(lambda: cli(s, "PING") == "PONG", "Redis to answer", stack=s)
        assert cli(s, "EVAL", FILL, "0", "v1", "20000") == "20000"
        before = digest(s)
        assert before.startswith("20006 "), before
        b = s.exec("backup", "lifeboat", "backup")
        ts = b.stdout.strip().splitlines()[-1]
        cli(s, "FLUSHALL")
        assert cli(s, "EVAL", FILL, "0", "v2", "500") == "500"
        assert digest(s) != before
        r = s.exec("backup", "lifeboat", "restore", ts, "--yes")
        assert "restored redis 'redis' into" in r.stderr, r.stderr
        assert s.container_state("redis") == "running"
        wait_for(lambda: cli(s, "PING") == "PONG", "Redis to answer after the restore", stack=s)
        assert digest(s) == before
        if appendonly == "yes":
            # The server appends to the AOF made of the snapshot: a restart keeps the data.
            s.run("restart", "redis")
            wait_for(lambda: cli(s, "PING") == "PONG", "Redis to answer", stack=s)
            assert digest(s) == before
        left = s.exec("backup", "ls", "-A", "/redis-data").stdout.split()
        assert not [n for n in left if n.startswith(".lifeboat")], left
        logs = b.stderr + r.stderr
        assert DB_PASSWORD not in logs and urllib.parse.quote(DB_PASSWORD, safe="") not in logs
    finally:
        s.down()
