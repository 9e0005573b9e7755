#!/usr/bin/env bash
# A private PostgreSQL server for the tests, from Debian's packages.
#   pg-test-server.sh start DIR PORT PASSWORD   (prints nothing; server listens on 127.0.0.1:PORT)
#   pg-test-server.sh stop DIR
# Runs as the 'postgres' system user when started by root (initdb refuses root).
set -euo pipefail
cmd=$1 dir=$2
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "pg-test-server: no PostgreSQL server installed (apt-get install postgresql)" >&2; exit 1; }
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi
case $cmd in
start)
	port=$3 password=$4
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir"
	chmod 700 "$dir"
	printf '%s\n' "$password" > "$dir/.pw"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir/.pw"
	"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=scram-sha-256 \
		--pwfile="$dir/.pw" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	rm -f "$dir/.pw"
	"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" \
		start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
	;;
stop)
	[ -d "$dir/data" ] && "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	;;
*)
	echo "usage: $0 start DIR PORT PASSWORD | stop DIR" >&2
	exit 2
	;;
esac
