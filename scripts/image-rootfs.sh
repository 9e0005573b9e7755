#!/bin/sh
# Make the root file system of Lifeboat's image in DEST: the programs Lifeboat runs, each
# with the shared libraries it loads (the closure `ldd` reports), and the few data files
# they read. It runs in the Dockerfile's `collect` stage, where those programs are installed
# from Debian's packages; the image itself is `FROM scratch` with DEST copied in.
#
#   image-rootfs.sh DEST
#
# Every path comes from this stage's own file system (no host names). A program that is
# not installed in the stage is an error, except rclone (only with --build-arg RCLONE=1).
set -eu

DEST=${1:?usage: image-rootfs.sh DEST}
# The multiarch library directory (/usr/lib/x86_64-linux-gnu): where libc is.
ARCH_LIB=$(dirname "$(readlink -f "$(ldd /bin/sh | awk '$1 ~ /^libc\.so/ { print $3 }')")")

mkdir -p "$DEST"
# Debian 12's merged /usr: /bin, /lib, /lib64 and /sbin are links into /usr.
for l in bin lib lib64 sbin; do
	if [ -L "/$l" ]; then
		ln -sfn "$(readlink "/$l")" "$DEST/$l"
	fi
done

# Copy one file, its symlinks followed, to DEST/DST: by default to its own name in its
# directory's real path (a library keeps the soname the loader asks for,
# /usr/lib/x86_64-linux-gnu/libcurl.so.4, not its target's name).
put() {
	dst=$DEST${2:-$(readlink -f "$(dirname "$1")")/$(basename "$1")}
	if [ ! -e "$dst" ]; then
		mkdir -p "$(dirname "$dst")"
		cp -p "$(readlink -f "$1")" "$dst"
	fi
}

# A program or library and every library it loads, each at its real path (the loader
# finds them in the default directories, where Debian puts them).
closure() {
	f=$1
	put "$f" "${2:-}"
	ldd "$f" 2>/dev/null | while read -r a b c rest; do
		case "$b" in
		"=>") lib=$c ;;
		*) lib=$a ;;
		esac
		case "$lib" in
		/*) ;;
		*) continue ;;
		esac
		[ -e "$lib" ] || { echo "image-rootfs: $f needs $lib, which is missing" >&2; exit 1; }
		# The loader itself (/lib64/ld-linux-x86-64.so.2) lands in /usr/lib64 through
		# the merged-/usr link.
		put "$lib"
	done
}

need() {
	p=$(command -v "$1" 2>/dev/null || true)
	[ -n "$p" ] || { echo "image-rootfs: '$1' is not installed in the build stage" >&2; exit 1; }
	echo "$p"
}

# Lifeboat itself, and lifeboat-sched (the idle `lifeboat run`, which `lifeboat run`
# execs). libmongoc, libpq and libmariadb also go in by name, so they are there even if
# lifeboat loads them only when a configuration uses them (dlopen, which ldd does not see);
# so does libmicrohttpd, which metrics.c loads with dlopen for BACKUP_METRICS_ADDR.
closure /usr/local/bin/lifeboat
closure /usr/local/bin/lifeboat-sched
for lib in libmongoc-1.0.so.0 libbson-1.0.so.0 libpq.so.5 libmariadb.so.3; do
	if [ -e "$ARCH_LIB/$lib" ]; then closure "$ARCH_LIB/$lib" "$ARCH_LIB/$lib"; fi
done
closure "$ARCH_LIB/libmicrohttpd.so.12" "$ARCH_LIB/libmicrohttpd.so.12"

# ICU_SUBSET: a directory with a small libicudata (scripts/icu-data-subset.sh) to use in
# place of Debian's; it must be the same ICU version the libraries above load.
if [ -n "${ICU_SUBSET:-}" ]; then
	for f in "$ICU_SUBSET"/libicudata.so.*; do
		t=$DEST$ARCH_LIB/$(basename "$f")
		[ -e "$t" ] || { echo "image-rootfs: nothing loads $(basename "$f") (another ICU version?)" >&2; exit 1; }
		cp "$f" "$t"
	done
fi

# Encryption: gpg starts gpg-agent (for the passphrase and the S2K) itself; Lifeboat runs
# gpgconf to stop it. GnuPG 2.2 keeps public keys in pubring.kbx (no keyboxd).
for p in gpg gpg-agent gpgconf age; do
	closure "$(need $p)" "/usr/bin/$p"
done

# PostgreSQL's client programs, not Debian's Perl wrapper in /usr/bin: the one major
# version installed (15 from Debian, or PG_MAJOR's). pg_dumpall finds pg_dump next to it.
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
for p in pg_dump pg_restore pg_dumpall psql; do
	[ -x "$pgbin/$p" ] || { echo "image-rootfs: $pgbin/$p is missing" >&2; exit 1; }
	closure "$pgbin/$p" "/usr/bin/$p"
done

# MariaDB's client and dump tool, and the client's authentication plugins (loaded by
# name when a server asks for them: caching_sha2_password, ed25519, ...).
for p in mariadb mariadb-dump redis-cli; do
	closure "$(need $p)" "/usr/bin/$p"
done
for plugdir in "$ARCH_LIB"/libmariadb3/plugin; do
	[ -d "$plugdir" ] || continue
	for so in "$plugdir"/*.so; do
		closure "$so" "$so"
	done
done

# rclone: only with --build-arg RCLONE=1 (a single static program).
if command -v rclone >/dev/null 2>&1; then
	closure "$(command -v rclone)" /usr/bin/rclone
fi

# A shell and the usual commands for the seed's /backup-scripts/*.sh, `docker exec ... sh`
# and the PostgreSQL programs' popen(): Debian's static busybox, one link per applet that
# does not shadow a real program.
put "$(need busybox)" /usr/bin/busybox
if ldd /usr/bin/busybox >/dev/null 2>&1; then
	echo "image-rootfs: busybox is not static (install busybox-static)" >&2
	exit 1
fi
for a in $(/usr/bin/busybox --list); do
	[ -e "$DEST/usr/bin/$a" ] || [ -L "$DEST/usr/bin/$a" ] || ln -s busybox "$DEST/usr/bin/$a"
done

# Data: time zones (TZ=Europe/Berlin; the "right/" leap-second variants are left out),
# CA certificates (libcurl's and OpenSSL's default paths), the C.UTF-8 locale Lifeboat
# selects for file names.
mkdir -p "$DEST/usr/share"
cp -a /usr/share/zoneinfo "$DEST/usr/share/"
rm -rf "$DEST/usr/share/zoneinfo/right"
mkdir -p "$DEST/etc/ssl/certs"
cp -p /etc/ssl/certs/ca-certificates.crt "$DEST/etc/ssl/certs/"
mkdir -p "$DEST/usr/lib/ssl"
cp -a /usr/lib/ssl/cert.pem /usr/lib/ssl/certs "$DEST/usr/lib/ssl/" 2>/dev/null || true
if [ -f /usr/lib/ssl/openssl.cnf ]; then
	cp -p "$(readlink -f /usr/lib/ssl/openssl.cnf)" "$DEST/usr/lib/ssl/openssl.cnf"
fi
if [ -d /usr/lib/locale/C.utf8 ]; then
	mkdir -p "$DEST/usr/lib/locale"
	cp -a /usr/lib/locale/C.utf8 "$DEST/usr/lib/locale/"
fi

# Users: root, and nobody for `user: UID:GID` without an entry of its own (any UID works:
# Lifeboat needs no name for it).
mkdir -p "$DEST/etc"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$DEST/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$DEST/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$DEST/etc/nsswitch.conf"
mkdir -p "$DEST/root" && chmod 700 "$DEST/root"

# Writable places: TMPDIR (gpg's private homes), the state directory and /var/log (the
# default BACKUP_LOG_FILE, /var/log/backup.log). They are writable by any user with the
# sticky bit, like /tmp, so a container run as `user: UID:GID` keeps its lock, state and
# log there too (a named volume mounted there takes this mode when it is new).
mkdir -p "$DEST/tmp" "$DEST/var/lib/lifeboat" "$DEST/var/log"
chmod 1777 "$DEST/tmp" "$DEST/var/lib/lifeboat" "$DEST/var/log"

cp -a /backup-scripts "$DEST/"
