#!/usr/bin/env bash
# The one test command: installs what it needs, builds a normal and an ASan+UBSan
# configuration, runs the cmocka unit tests (also under valgrind), a short libFuzzer run
# of the cron and environment parsers, and the pytest integration tests against the real
# binary (S3 ones against a MinIO server built with `go install` into .cache/bin and
# started here; MongoDB ones against FerretDB, and MongoDB's own mongorestore, both built
# from their Go modules) and end-to-end tests of the image, then prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
export LC_ALL=C.UTF-8
# libmongoc's load-time counters in /dev/shm: off, as in the image (see the Dockerfile).
export MONGOC_DISABLE_SHM=1

say() { printf '\n==> %s\n' "$*"; }

APT_PACKAGES=(gcc meson ninja-build pkg-config libarchive-dev libssl-dev libjansson-dev
	libcmocka-dev libsqlite3-dev valgrind gnupg tar gzip coreutils clang-format python3 python3-pip
	libcurl4-openssl-dev curl openssl libmicrohttpd-dev clang libclang-rt-14-dev
	libpq-dev postgresql postgresql-client libmongoc-dev libbson-dev
	zlib1g-dev libzstd-dev zstd pigz)

install_deps() {
	local missing=()
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	if ((${#missing[@]})); then
		say "installing ${missing[*]}"
		local sudo=()
		[ "$(id -u)" = 0 ] || sudo=(sudo)
		"${sudo[@]}" apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
			{ echo "test.sh: cannot install ${missing[*]}" >&2; exit 1; }
	fi
	local mod
	for mod in pytest boto3 pymongo; do
		if ! python3 -c "import $mod" 2>/dev/null; then
			say "installing $mod"
			python3 -m pip install -q "$mod" 2>/dev/null ||
				python3 -m pip install -q --break-system-packages "$mod" ||
				{ echo "test.sh: cannot install $mod" >&2; exit 1; }
		fi
	done
}

# MinIO, the S3 server of the integration tests: built once with `go install`
# (pinned), kept in the git-ignored .cache/bin and reused.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_BIN=$ROOT/.cache/bin/minio
MINIO_DATA=
MINIO_PIDFILE=

build_minio() {
	[ -x "$MINIO_BIN" ] && return 0
	local go
	go=$(command -v go || echo /usr/local/go/bin/go)
	[ -x "$go" ] || { echo "test.sh: Go is needed to build MinIO (install Go 1.24+)" >&2; return 1; }
	say "building MinIO $MINIO_VERSION (go install; a few minutes the first time)"
	mkdir -p "$ROOT/.cache/bin"
	GOBIN=$ROOT/.cache/bin GOFLAGS=-buildvcs=false "$go" install "github.com/minio/minio@$MINIO_VERSION"
}

stop_minio() {
	if [ -n "$MINIO_PIDFILE" ] && [ -s "$MINIO_PIDFILE" ]; then
		local pid
		pid=$(cat "$MINIO_PIDFILE")
		kill "$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
	fi
	[ -n "$MINIO_DATA" ] && rm -rf "$MINIO_DATA" "$MINIO_DATA.log" "$MINIO_PIDFILE"
	return 0
}

# Start MinIO on 127.0.0.1 with a temp data dir and fresh credentials; export them for pytest.
start_minio() {
	build_minio || return 1
	MINIO_DATA=$(mktemp -d /tmp/lb-minio.XXXXXX)
	MINIO_PIDFILE=$MINIO_DATA.pid
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	export LB_S3_ENDPOINT=http://127.0.0.1:$port
	export LB_S3_ACCESS_KEY=lbtest$RANDOM
	export LB_S3_SECRET_KEY=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
	export LB_MINIO_BIN=$MINIO_BIN LB_MINIO_DATA=$MINIO_DATA LB_MINIO_PIDFILE=$MINIO_PIDFILE
	MINIO_ROOT_USER=$LB_S3_ACCESS_KEY MINIO_ROOT_PASSWORD=$LB_S3_SECRET_KEY MINIO_BROWSER=off \
		setsid "$MINIO_BIN" server --quiet --address "127.0.0.1:$port" "$MINIO_DATA" \
		>"$MINIO_DATA.log" 2>&1 </dev/null &
	echo $! >"$MINIO_PIDFILE"
	for _ in $(seq 300); do
		if curl -fs -o /dev/null "$LB_S3_ENDPOINT/minio/health/live"; then
			echo "MinIO is up at $LB_S3_ENDPOINT"
			return 0
		fi
		sleep 0.2
	done
	echo "test.sh: MinIO did not start:" >&2
	tail -20 "$MINIO_DATA.log" >&2
	unset LB_S3_ENDPOINT
	return 1
}

# PostgreSQL for the database tests: a private server (Debian's packages) on a free
# loopback port, superuser password with characters that need percent-encoding.
PG_DIR=
start_postgres() {
	PG_DIR=$(mktemp -d /tmp/lb-pg.XXXXXX)
	chmod 755 "$PG_DIR"
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	export LB_PG_HOST=127.0.0.1 LB_PG_PORT=$port LB_PG_USER=postgres
	export LB_PG_PASSWORD="pg@:/$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
	scripts/pg-test-server.sh start "$PG_DIR/srv" "$port" "$LB_PG_PASSWORD" || return 1
	echo "PostgreSQL is up at 127.0.0.1:$port"
}
stop_postgres() {
	[ -n "$PG_DIR" ] && scripts/pg-test-server.sh stop "$PG_DIR/srv" && rm -rf "$PG_DIR"
	return 0
}

install_deps

# FerretDB (MongoDB wire protocol over SQLite), the MongoDB server of the integration
# tests, and mongorestore from MongoDB's Go module mongo-tools (the compatibility test):
# built from their Go modules into .cache/bin once, pinned, and reused.
FERRETDB_VERSION=v1.24.2
FERRETDB_BIN=$ROOT/.cache/bin/ferretdb
# mongo-tools tags are not Go versions: a pseudo-version of master (100.12.x, July 2025).
MONGO_TOOLS_VERSION=v0.0.0-20250715155915-887641268977
MONGO_TOOLS_SUM=h1:J9wFLko0N7sbovyHahuRw1NyfMUsNhaauLK87wQ3ruc=
MONGORESTORE_BIN=$ROOT/.cache/bin/mongorestore
FERRET_DATA=
FERRET_PIDFILE=

go_bin() {
	command -v go || echo /usr/local/go/bin/go
}

# Download a module into the module cache; print its directory, or fail when its
# checksum is not `want` (when given).
go_module_dir() { # MODULE@VERSION [WANT_SUM]
	local go json
	go=$(go_bin)
	json=$("$go" mod download -json "$1") || { echo "test.sh: cannot download $1" >&2; return 1; }
	python3 - "$1" "${2:-}" "$json" <<'PY'
import json, sys
mod, want, d = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if d.get("Error"):
    sys.exit(f"test.sh: {mod}: {d['Error']}")
if want and d.get("Sum") != want:
    sys.exit(f"test.sh: {mod}: checksum {d.get('Sum')} is not the pinned {want}")
print(d["Dir"])
PY
}

build_ferretdb() {
	[ -x "$FERRETDB_BIN" ] && return 0
	local go dir tmp
	go=$(go_bin)
	[ -x "$go" ] || { echo "test.sh: Go is needed to build FerretDB (install Go 1.24+)" >&2; return 1; }
	say "building FerretDB $FERRETDB_VERSION (a minute or two the first time)"
	dir=$(go_module_dir "github.com/FerretDB/FerretDB@$FERRETDB_VERSION") || return 1
	# `go install` leaves out build/version/version.txt, without which FerretDB panics.
	tmp=$(mktemp -d /tmp/lb-ferretdb-src.XXXXXX)
	cp -r "$dir/." "$tmp" && chmod -R u+w "$tmp" &&
		echo "$FERRETDB_VERSION" >"$tmp/build/version/version.txt" &&
		mkdir -p "$ROOT/.cache/bin" &&
		(cd "$tmp" && GOFLAGS=-buildvcs=false "$go" build -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb) &&
		mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
	local rc=$?
	rm -rf "$tmp"
	return $rc
}

build_mongorestore() {
	[ -x "$MONGORESTORE_BIN" ] && return 0
	local go dir tmp
	go=$(go_bin)
	[ -x "$go" ] || { echo "test.sh: Go is needed to build mongorestore (install Go 1.24+)" >&2; return 1; }
	say "building mongorestore (mongo-tools $MONGO_TOOLS_VERSION; a minute or two the first time)"
	# The checksum database has no entry for this pseudo-version: the pinned sum checks it.
	dir=$(GONOSUMDB=github.com/mongodb/mongo-tools go_module_dir \
		"github.com/mongodb/mongo-tools@$MONGO_TOOLS_VERSION" "$MONGO_TOOLS_SUM") || return 1
	# Its vendor/ directory is incomplete in the module zip: build from go.sum instead.
	tmp=$(mktemp -d /tmp/lb-mongo-tools-src.XXXXXX)
	cp -r "$dir/." "$tmp" && chmod -R u+w "$tmp" && rm -rf "$tmp/vendor" &&
		mkdir -p "$ROOT/.cache/bin" &&
		(cd "$tmp" && GOFLAGS="-mod=mod -buildvcs=false" "$go" build -o "$MONGORESTORE_BIN.tmp" ./mongorestore/main) &&
		mv "$MONGORESTORE_BIN.tmp" "$MONGORESTORE_BIN"
	local rc=$?
	rm -rf "$tmp"
	return $rc
}

stop_ferretdb() {
	if [ -n "$FERRET_PIDFILE" ] && [ -s "$FERRET_PIDFILE" ]; then
		local pid
		pid=$(cat "$FERRET_PIDFILE")
		kill "$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
	fi
	[ -n "$FERRET_DATA" ] && rm -rf "$FERRET_DATA" "$FERRET_DATA.log" "$FERRET_PIDFILE"
	return 0
}

# Start FerretDB on 127.0.0.1 with the SQLite backend, authentication on and a fresh
# user whose password needs percent-encoding; export the URI and tools for pytest.
start_ferretdb() {
	build_ferretdb || return 1
	FERRET_DATA=$(mktemp -d /tmp/lb-ferretdb.XXXXXX)
	FERRET_PIDFILE=$FERRET_DATA.pid
	local port pass
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	pass="p@ss:w/rd%$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
	export LB_MONGO_USER=lbroot LB_MONGO_PASSWORD=$pass LB_MONGO_HOSTPORT=127.0.0.1:$port
	export LB_MONGO_URI="mongodb://lbroot:$(python3 -c 'import os, urllib.parse; print(urllib.parse.quote(os.environ["LB_MONGO_PASSWORD"], safe=""))')@127.0.0.1:$port/?authSource=admin"
	mkdir -p "$FERRET_DATA/db"
	FERRETDB_SETUP_PASSWORD=$pass setsid "$FERRETDB_BIN" --handler=sqlite \
		--sqlite-url="file:$FERRET_DATA/db/" --state-dir="$FERRET_DATA" \
		--listen-addr="127.0.0.1:$port" --debug-addr=- --telemetry=disable --log-level=warn \
		--test-enable-new-auth --setup-database=admin --setup-username=lbroot \
		>"$FERRET_DATA.log" 2>&1 </dev/null &
	echo $! >"$FERRET_PIDFILE"
	for _ in $(seq 150); do
		if python3 -c 'import os, pymongo; pymongo.MongoClient(os.environ["LB_MONGO_URI"], serverSelectionTimeoutMS=500).admin.command("ping")' 2>/dev/null; then
			echo "FerretDB is up at 127.0.0.1:$port"
			return 0
		fi
		kill -0 "$(cat "$FERRET_PIDFILE")" 2>/dev/null || break
		sleep 0.2
	done
	echo "test.sh: FerretDB did not start:" >&2
	tail -20 "$FERRET_DATA.log" >&2
	unset LB_MONGO_URI
	return 1
}

# A Docker engine for the end-to-end tests: start one when none answers.
STARTED_DOCKERD=
ensure_docker() {
	if ! command -v docker-compose >/dev/null; then
		say "installing docker-compose (the stack tests drive it)"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends docker-compose >/dev/null || return 1
	fi
	docker info >/dev/null 2>&1 && return 0
	if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
		say "installing docker.io and debootstrap"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends docker.io debootstrap >/dev/null || return 1
	fi
	command -v docker >/dev/null || return 1
	docker info >/dev/null 2>&1 && return 0
	say "starting dockerd (log: build-results/dockerd.log)"
	dockerd >"$ROOT/build-results/dockerd.log" 2>&1 &
	STARTED_DOCKERD=$!
	for _ in $(seq 60); do
		docker info >/dev/null 2>&1 && return 0
		sleep 1
	done
	echo "test.sh: dockerd did not come up" >&2
	return 1
}
stop_docker() {
	[ -n "$STARTED_DOCKERD" ] && kill "$STARTED_DOCKERD" 2>/dev/null && wait "$STARTED_DOCKERD" 2>/dev/null
	return 0
}
cleanup() {
	stop_minio
	stop_ferretdb
	stop_postgres
	stop_docker
}
trap cleanup EXIT

FAILED_STAGES=()
stage() { # stage NAME CMD...: run a gate, remember failures
	local name=$1; shift
	say "$name"
	if ! "$@"; then
		FAILED_STAGES+=("$name")
		echo "test.sh: stage '$name' FAILED" >&2
	fi
}

setup() { # setup DIR ARGS...
	local dir=$1; shift
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

RESULTS=$ROOT/build-results
rm -rf "$RESULTS"; mkdir -p "$RESULTS"

stage "build (gcc -Werror)" bash -c "$(declare -f setup); setup build -Dtests=enabled -Dfault_points=true && ninja -C build"
stage "build (ASan+UBSan)" bash -c "$(declare -f setup); setup build-asan -Dtests=enabled -Dfault_points=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug && ninja -C build-asan"

if [ ! -x build/lifeboat ] || [ ! -x build-asan/lifeboat ]; then
	echo "test.sh: build failed" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

stage "format (clang-format)" bash -c 'clang-format --dry-run --Werror src/*.[ch] src/stores/*.[ch] tests/unit/*.c tests/fuzz/*.c tests/e2e/*.c'
stage "fuzz (libFuzzer+ASan+UBSan, cron and env parsers, ${FUZZ_SECONDS:-15} s each)" tests/fuzz/build.sh

stage "S3 server (MinIO)" start_minio
stage "MongoDB server (FerretDB)" start_ferretdb
stage "mongorestore (mongo-tools)" build_mongorestore
export LB_MONGORESTORE_BIN=$MONGORESTORE_BIN
export LB_FERRETDB_BIN=$FERRETDB_BIN # the end-to-end tests put it in an image
stage "PostgreSQL server" start_postgres

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
stage "unit tests (ASan+UBSan)" meson test -C build-asan --suite unit --print-errorlogs --verbose
cp build-asan/meson-logs/testlog.json "$RESULTS/unit-asan.json" 2>/dev/null
stage "unit tests (valgrind)" meson test -C build --suite unit --print-errorlogs \
	--wrapper 'valgrind --quiet --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect'
cp build/meson-logs/testlog-valgrind.json "$RESULTS/unit-valgrind.json" 2>/dev/null

stage "integration tests (release build)" env LIFEBOAT_BIN="$ROOT/build/lifeboat" \
	python3 -m pytest -q -p no:cacheprovider tests/integration --junitxml="$RESULTS/integration.xml"
stage "integration tests (ASan+UBSan build, without slow tests)" env LIFEBOAT_BIN="$ROOT/build-asan/lifeboat" \
	python3 -m pytest -q -p no:cacheprovider -m "not slow" tests/integration --junitxml="$RESULTS/integration-asan.xml"

if stage "docker engine and base image" ensure_docker; then
	stage "base image debian:bookworm-slim" scripts/docker-base-image.sh
fi
stage "end-to-end tests (image, Compose stack, Swarm, exec API under ASan)" env LIFEBOAT_PROBE="$ROOT/build-asan/docker-exec-probe" \
	python3 -m pytest -q tests/e2e --junitxml="$RESULTS/e2e.xml"

say "summary"
python3 - "$RESULTS" "${#FAILED_STAGES[@]}" <<'PY'
import json, sys, glob, os, re
import xml.etree.ElementTree as ET
res, failed_stages = sys.argv[1], int(sys.argv[2])
passed = failed = skipped = 0
cm_pass = re.compile(r"\[\s*PASSED\s*\]\s+(\d+) test")
cm_fail = re.compile(r"\[\s*FAILED\s*\]\s+(\d+) test")
for f in sorted(glob.glob(os.path.join(res, "unit-*.json"))):
    p = q = 0
    for line in open(f):
        t = json.loads(line)
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        # cmocka's own counts; a binary that crashed before them counts as one failure
        mp, mf = cm_pass.findall(out), cm_fail.findall(out)
        p += sum(map(int, mp))
        q += sum(map(int, mf))
        if t.get("result") != "OK" and not mf:
            q += 1
    print(f"  {os.path.basename(f)}: {p} passed, {q} failed")
    passed += p; failed += q
for f in sorted(glob.glob(os.path.join(res, "*.xml"))):
    t = ET.parse(f).getroot()
    suites = [t] if t.tag == "testsuite" else list(t)
    tot = sum(int(s.get("tests", 0)) for s in suites)
    fl = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    sk = sum(int(s.get("skipped", 0)) for s in suites)
    print(f"  {os.path.basename(f)}: {tot - fl - sk} passed, {fl} failed, {sk} skipped")
    passed += tot - fl - sk; failed += fl; skipped += sk
# A gate that failed without a test result (build, format, a crash) still counts.
if failed_stages and failed == 0:
    failed = failed_stages
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
if ((${#FAILED_STAGES[@]})); then
	echo "test.sh: failed stages: ${FAILED_STAGES[*]}" >&2
	exit 1
fi
exit 0
