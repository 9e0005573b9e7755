#!/bin/sh
# redis-server in the foreground as the redis user, data in /data, the password
# (REDIS_PASSWORD) in a config file rather than its command line.
set -eu
: "${REDIS_PASSWORD:?set REDIS_PASSWORD}"
chown redis:redis /data
umask 077
printf 'requirepass "%s"\n' "$(printf '%s' "$REDIS_PASSWORD" | sed 's/\\/\\\\/g; s/"/\\"/g')" \
	>/etc/redis/lifeboat-e2e.conf
chown redis /etc/redis/lifeboat-e2e.conf
exec runuser -u redis -- redis-server /etc/redis/lifeboat-e2e.conf --dir /data --bind 0.0.0.0 \
	--port 6379 --protected-mode no --daemonize no --logfile "" --appendonly "${REDIS_APPENDONLY:-no}"
