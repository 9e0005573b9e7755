#!/bin/sh
# Append a line every 0.2 s; stop cleanly (and say so) on SIGTERM.
mkdir -p /data
trap 'echo "stop $(date +%s.%N)" >>/data/events; exit 0' TERM INT
echo "start $(date +%s.%N)" >>/data/events
while :; do
	date +%s.%N >>/data/ticks
	sleep 0.2 &
	wait $!
done
