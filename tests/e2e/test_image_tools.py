"""The small image's own tools, run by Lifeboat inside it: MariaDB's mariadb-dump and
mariadb (BACKUP_MYSQL_DUMP=local, rows compared after the restore), and age encryption
(restored bytes compared). The image is FROM scratch with only what these programs load:
a missing library or plugin fails here."""

import os
import subprocess
import urllib.parse

from conftest import REPO
from test_image import run, tree
from test_mysql_exec import checksum, sql
from test_scenarios import DB_PASSWORD, Stack, wait_for


def test_mariadb_dump_and_restore_with_the_images_own_client(image, tmp_path):
    uri = f"mysql://root:{urllib.parse.quote(DB_PASSWORD, safe='')}@mariadb:3306/app"
    env = {"BACKUP_NAME": "mylocal", "BACKUP_LOCAL_PATH": "/backups-local",
           "BACKUP_ENCRYPTION_KEY": "e2e mysql passphrase", "BACKUP_MYSQL": uri,
           "BACKUP_MYSQL_DUMP": "local", "TZ": "UTC"}
    s = Stack(tmp_path, REPO / "tests" / "e2e" / "mysql.yml", env)
    s.proc_env["LIFEBOAT_IMAGE"] = image
    try:
        s.run("up", "-d", "--build", timeout=1800)
        wait_for(lambda: sql(s, "SELECT 1") == "1", "MariaDB to accept connections", stack=s)
        sql(s, "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(50), blob_col BLOB) "
               "ENGINE=InnoDB; INSERT INTO t SELECT seq, CONCAT('note ✓ ', seq), "
               "UNHEX(SHA2(seq, 256)) FROM seq_1_to_5000; "
               "CREATE VIEW v AS SELECT COUNT(*) AS n FROM t")
        before = checksum(s)
        b = s.exec("backup", "lifeboat", "backup")
        ts = b.stdout.strip().splitlines()[-1]
        sql(s, "DELETE FROM t WHERE id % 2 = 0; DROP VIEW v")
        r = s.exec("backup", "lifeboat", "restore", ts, "--yes")
        assert checksum(s) == before
        logs = b.stderr + r.stderr
        assert "running the client tools in container" not in logs, logs
    finally:
        s.down()


def test_age_encryption_in_the_image(image, tmp_path):
    (tmp_path / "backups").mkdir()
    key = tmp_path / "backups" / "key.txt"  # /backups-local/key.txt in the container
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True,
                               capture_output=True, text=True).stdout.strip()
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "blob.bin").write_bytes(os.urandom(100_000))
    (data / "a.txt").write_text("age in a small image\n")
    orig = tree(data)
    age = {"BACKUP_ENCRYPTION": "age", "BACKUP_AGE_RECIPIENTS": recipient,
           "BACKUP_ENCRYPTION_KEY": ""}
    b = run(image, tmp_path, "backup", env=age)
    assert b.returncode == 0, b.stderr
    ts = b.stdout.strip()
    assert (tmp_path / "backups" / "e2e" / f"e2e-{ts}.tar.gz.age").is_file()
    (data / "a.txt").write_text("wrecked\n")
    r = run(image, tmp_path, "restore", ts, "--yes",
            env={**age, "BACKUP_AGE_IDENTITY_FILE": "/backups-local/key.txt"})
    assert r.returncode == 0, r.stderr
    assert tree(data) == orig
