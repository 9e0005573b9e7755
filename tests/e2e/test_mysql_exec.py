"""MariaDB in a container built from the Debian base, dumped and restored by the sidecar
with the container's own mariadb-dump and mariadb through the Docker exec API
(BACKUP_MYSQL_DUMP=exec): rows compared by an ordered checksum after the restore, and the
password in no log."""

import urllib.parse

from conftest import REPO
from test_scenarios import DB_PASSWORD, Stack, wait_for


def sql(s, q):
    return s.run("exec", "-T", "mariadb", "sh", "-c",
                 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" exec mariadb --no-defaults -uroot --batch '
                 "--skip-column-names app", input=q).stdout.strip()


def checksum(s):
    return sql(s, "SELECT COUNT(*), SHA2(GROUP_CONCAT(id, ':', note, ':', HEX(blob_col) "
                  "ORDER BY id SEPARATOR ','), 256) FROM t; SELECT n FROM v")


def test_mariadb_dump_exec_in_the_database_container(image, tmp_path):
    uri = f"mysql://root:{urllib.parse.quote(DB_PASSWORD, safe='')}@mariadb:3306/app"
    env = {"BACKUP_NAME": "myexec", "BACKUP_LOCAL_PATH": "/backups-local",
           "BACKUP_ENCRYPTION_KEY": "e2e mysql passphrase", "BACKUP_MYSQL": uri,
           "BACKUP_MYSQL_DUMP": "exec", "TZ": "UTC"}
    s = Stack(tmp_path, REPO / "tests" / "e2e" / "mysql.yml", env)
    s.proc_env["LIFEBOAT_IMAGE"] = image
    try:
        s.run("up", "-d", "--build", timeout=1800)
        wait_for(lambda: sql(s, "SELECT 1") == "1", "MariaDB to accept connections", stack=s)
        sql(s, "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(50), blob_col BLOB) "
               "ENGINE=InnoDB; INSERT INTO t SELECT seq, CONCAT('note ✓ ', seq), "
               "UNHEX(SHA2(seq, 256)) FROM seq_1_to_20000; "
               "CREATE VIEW v AS SELECT COUNT(*) AS n FROM t")
        before = checksum(s)
        b = s.exec("backup", "lifeboat", "backup")
        ts = b.stdout.strip().splitlines()[-1]
        sql(s, "DELETE FROM t WHERE id % 2 = 0; DROP VIEW v; CREATE TABLE extra (x INT)")
        r = s.exec("backup", "lifeboat", "restore", ts, "--yes")
        assert checksum(s) == before
        assert sql(s, "SHOW TABLES LIKE 'extra'") == ""
        logs = b.stderr + r.stderr
        assert "running the client tools in container 'mariadb'" in logs, logs
        assert DB_PASSWORD not in logs and urllib.parse.quote(DB_PASSWORD, safe="") not in logs
    finally:
        s.down()
