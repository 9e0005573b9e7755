#!/bin/sh
# Restore a backup: restore.sh YYYY-MM-DD-HHMMSS [--only NAME[,NAME...]] [--to DIR] [--yes] [--dry-run]
# Every option goes to 'lifeboat restore' as given (see 'lifeboat restore --help').
if [ $# -lt 1 ]; then
	echo "usage: restore.sh YYYY-MM-DD-HHMMSS [--only NAME[,NAME...]] [--to DIR] [--yes] [--dry-run]" >&2
	echo "(list the backups with /backup-scripts/list-backups.sh)" >&2
	exit 2
fi
exec lifeboat restore "$@"
