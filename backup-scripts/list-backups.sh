#!/bin/sh
# List the backups of BACKUP_NAME, newest first.
exec lifeboat list "$@"
