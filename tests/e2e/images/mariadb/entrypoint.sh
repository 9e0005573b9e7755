#!/bin/sh
# First start: a datadir with root's password (for localhost and the network) and the
# database MARIADB_DATABASE; then mariadbd in the foreground on every interface.
set -eu
DATA=/var/lib/mysql
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld "$DATA"
if [ ! -d "$DATA/mysql" ]; then
	: "${MARIADB_ROOT_PASSWORD:?set MARIADB_ROOT_PASSWORD}"
	mariadb-install-db --user=mysql --datadir="$DATA" --auth-root-authentication-method=normal \
		--skip-test-db >/dev/null
	mariadbd --user=mysql --datadir="$DATA" --skip-networking &
	pid=$!
	i=0
	until mariadb-admin --no-defaults -uroot ping >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -lt 300 ] || { echo "mariadbd did not start" >&2; exit 1; }
		sleep 0.2
	done
	pw=$(printf '%s' "$MARIADB_ROOT_PASSWORD" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g")
	mariadb --no-defaults -uroot <<-SQL
		ALTER USER root@localhost IDENTIFIED BY '$pw';
		CREATE OR REPLACE USER root@'%' IDENTIFIED BY '$pw';
		GRANT ALL ON *.* TO root@'%' WITH GRANT OPTION;
		CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE:-app}\` CHARACTER SET utf8mb4;
	SQL
	kill "$pid"
	wait "$pid" || true
fi
exec mariadbd --user=mysql --datadir="$DATA" --bind-address=0.0.0.0 --port=3306 \
	--character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci
