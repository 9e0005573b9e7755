#!/bin/sh
# Take a backup now (the seed sidecar's command, kept for compatibility).
exec lifeboat backup "$@"
