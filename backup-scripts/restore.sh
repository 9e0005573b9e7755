#!/bin/sh
# Restore a backup: restore.sh YYYY-MM-DD-HHMMSS [--yes] [--dry-run]
if [ $# -lt 1 ]; then
	echo "usage: restore.sh YYYY-MM-DD-HHMMSS [--yes] [--dry-run]" >&2
	echo "(list the backups with /backup-scripts/list-backups.sh)" >&2
	exit 2
fi
exec lifeboat restore "$@"
