#!/bin/sh
# Wait until the example app has written to PostgreSQL (so the first backup has data).
# Usage: wait-for-example.sh "docker-compose -f docker-compose.example.yml"
set -eu
compose=$1
for _ in $(seq 90); do
	if $compose exec -T db psql -U postgres -d app -Atc "SELECT count(*) FROM events" 2>/dev/null |
		grep -qv '^0$'; then
		exit 0
	fi
	sleep 1
done
echo "wait-for-example: the app has not written to PostgreSQL after 90 s" >&2
$compose logs --tail=20 >&2
exit 1
