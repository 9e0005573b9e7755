#!/usr/bin/env bash
# Make sure the Docker engine has debian:bookworm-slim, the base of Lifeboat's Dockerfile.
# In the wild it is pulled; on machines without a registry it is built with debootstrap
# from the Debian mirror this machine's apt uses (read at run time), then `docker import`ed.
# The debootstrap tarball is cached under $LIFEBOAT_CACHE (default: <repo>/.cache).
set -euo pipefail
IMAGE=${1:-debian:bookworm-slim}
SUITE=bookworm
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${LIFEBOAT_CACHE:-$ROOT/.cache}

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
	exit 0
fi
if timeout 60 docker pull -q "$IMAGE" >/dev/null 2>&1; then
	exit 0
fi

# The mirror apt is configured with: deb822 .sources files or one-line sources.list.
mirror() {
	local f url
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		url=$(awk -v suite="$SUITE" '
			/^URIs:/ { uris = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
			/^$/ { if (ok && uris) { print uris; done = 1; exit } ok = 0; uris = "" }
			END { if (!done && ok && uris) print uris }' "$f")
		[ -n "$url" ] && { echo "$url"; return; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		url=$(awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' "$f")
		[ -n "$url" ] && { echo "$url"; return; }
	done
}

TARBALL=$CACHE/debian-$SUITE-minbase.tar
if [ ! -s "$TARBALL" ]; then
	command -v debootstrap >/dev/null || { echo "docker-base-image: debootstrap is not installed" >&2; exit 1; }
	MIRROR=$(mirror)
	[ -n "$MIRROR" ] || { echo "docker-base-image: no apt mirror for '$SUITE' found in /etc/apt" >&2; exit 1; }
	mkdir -p "$CACHE"
	DIR=$(mktemp -d "$CACHE/rootfs.XXXXXX")
	trap 'rm -rf "$DIR"' EXIT
	echo "docker-base-image: debootstrap $SUITE from $MIRROR" >&2
	debootstrap --variant=minbase "$SUITE" "$DIR" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
	# Like the official slim image: no apt lists, no caches.
	rm -rf "$DIR"/var/lib/apt/lists/* "$DIR"/var/cache/apt/*.bin
	tar -C "$DIR" -cf "$TARBALL.tmp" .
	mv "$TARBALL.tmp" "$TARBALL"
fi
docker import "$TARBALL" "$IMAGE" >/dev/null
echo "docker-base-image: $IMAGE imported" >&2
