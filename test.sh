#!/usr/bin/env bash
# The one test command, on a fresh machine as on a used one: installs what it needs (apt,
# pip), builds a normal, an ASan+UBSan and a libFuzzer configuration, builds the Go test
# servers once into a cache outside the clone, runs the cmocka unit tests (under ASan and
# under valgrind), the fuzz targets for a fixed number of inputs, the pytest integration
# tests against the real binary (release and ASan builds, in parallel workers) and the
# end-to-end tests of the image, then prints a per-stage time table and "N passed, N failed".
#
# The servers (MinIO, FerretDB, PostgreSQL, sshd, the Docker engine) are pytest session fixtures
# (tests/lbservers.py), so one suite also runs alone:
#   CI=true LIFEBOAT_BIN=$PWD/build/lifeboat python3 -m pytest tests/integration/test_s3.py
# Variables: LB_TEST_CACHE (Go-built servers; default ~/.cache/lifeboat-test),
# LB_TEST_JOBS (pytest workers; default 3), FUZZ_RUNS (inputs per fuzz target; the
# decoder target, a thread and a ring per input, runs a 25th of them: meson.build).
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
export LC_ALL=C.UTF-8
# libmongoc's load-time counters in /dev/shm: off, as in the image (see the Dockerfile).
export MONGOC_DISABLE_SHM=1
# CI semantics whatever the caller's environment: a missing server or tool fails, never skips.
export CI=true
export LB_TEST_CACHE=${LB_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lifeboat-test}
export PATH=$PATH:/usr/local/go/bin
JOBS=${LB_TEST_JOBS:-3}

say() { printf '\n==> %s\n' "$*"; }

APT_PACKAGES=(gcc meson ninja-build pkg-config libarchive-dev libssl-dev libjansson-dev
	libcmocka-dev libsqlite3-dev valgrind gnupg tar gzip coreutils clang-format python3 python3-pip
	libcurl4-openssl-dev curl openssl libmicrohttpd-dev clang libclang-rt-14-dev
	libpq-dev postgresql postgresql-client libmongoc-dev libbson-dev redis-server redis-tools
	libmariadb-dev mariadb-server mariadb-client
	zlib1g-dev libzstd-dev libdeflate-dev zstd pigz strace age
	docker.io docker-compose debootstrap make git openssh-server openssh-client
	apache2 apache2-utils rclone)
PIP_MODULES=(pytest:pytest xdist:pytest-xdist boto3:boto3 pymongo:pymongo aiosmtpd:aiosmtpd)

install_deps() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	# Azurite (tests/lbservers.py) runs on Node.js and comes from npm into LB_TEST_CACHE:
	# Debian's nodejs and npm, unless a Node.js with npm is installed already.
	{ command -v node && command -v npm; } >/dev/null || missing+=(nodejs npm)
	if ((${#missing[@]})); then
		say "installing ${missing[*]}"
		local sudo=()
		[ "$(id -u)" = 0 ] || sudo=(sudo)
		"${sudo[@]}" apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
			{ echo "test.sh: cannot install ${missing[*]}" >&2; return 1; }
	fi
	local mod
	for p in "${PIP_MODULES[@]}"; do
		mod=${p%%:*}
		if ! python3 -c "import $mod" 2>/dev/null; then
			say "installing ${p#*:}"
			python3 -m pip install -q "${p#*:}" 2>/dev/null ||
				python3 -m pip install -q --break-system-packages "${p#*:}" ||
				{ echo "test.sh: cannot install ${p#*:}" >&2; return 1; }
		fi
	done
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
STAGES=$RESULTS/stages.tsv # name, seconds, exit status, result file
T0=$SECONDS

stage() { # stage NAME RESULT_FILE|- CMD...: run a gate, time it, remember its outcome
	local name=$1 result=$2; shift 2
	say "$name"
	local t=$SECONDS rc=0
	"$@" || rc=$?
	((rc)) && echo "test.sh: stage '$name' FAILED (exit $rc)" >&2
	printf '%s\t%s\t%s\t%s\n' "$name" "$((SECONDS - t))" "$rc" "$result" >>"$STAGES"
	return $rc
}

summary() {
	say "summary"
	python3 - "$STAGES" "$((SECONDS - T0))" <<'PY'
import json, re, sys
import xml.etree.ElementTree as ET
stages, total = sys.argv[1], int(sys.argv[2])
cm_pass = re.compile(r"\[\s*PASSED\s*\]\s+(\d+) test")
cm_fail = re.compile(r"\[\s*FAILED\s*\]\s+(\d+) test")

def meson_counts(path):
    p = q = 0
    for line in open(path):
        t = json.loads(line)
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        mp, mf = cm_pass.findall(out), cm_fail.findall(out)
        if mp or mf:  # cmocka's own counts
            p += sum(map(int, mp)); q += sum(map(int, mf))
        if t.get("result") != "OK" and not mf:  # crashed, timed out, or not cmocka
            q += 1
        elif not (mp or mf):
            p += 1
    return p, q, 0

def junit_counts(path):
    t = ET.parse(path).getroot()
    suites = [t] if t.tag == "testsuite" else list(t)
    tot = sum(int(s.get("tests", 0)) for s in suites)
    fl = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    sk = sum(int(s.get("skipped", 0)) for s in suites)
    return tot - fl - sk, fl, sk

passed = failed = skipped = 0
rows = []
for line in open(stages):
    name, secs, rc, result = line.rstrip("\n").split("\t")
    p = q = s = 0
    try:
        if result.endswith(".json"):
            p, q, s = meson_counts(result)
        elif result.endswith(".xml"):
            p, q, s = junit_counts(result)
    except (OSError, ValueError, ET.ParseError):
        pass
    # A stage that failed counts as a failure even when none of its tests did (a build,
    # a crash before the results, a timeout), and whatever other stages counted.
    if rc != "0" and q == 0:
        q = 1
    passed += p; failed += q; skipped += s
    counts = f"{p} passed, {q} failed" + (f", {s} skipped" if s else "") if result != "-" or q else ""
    rows.append((name, int(secs), "ok" if rc == "0" else f"FAILED ({rc})", counts))
w = max(len(r[0]) for r in rows)
print(f"  {'stage':<{w}}  {'time':>7}  result")
for name, secs, status, counts in rows:
    print(f"  {name:<{w}}  {secs // 60:3d}:{secs % 60:02d}  {status}{'  ' + counts if counts else ''}")
print(f"  {'total':<{w}}  {total // 60:3d}:{total % 60:02d}")
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
}

stage "install (apt, pip)" - install_deps || { summary; exit 1; }

stage "build (gcc -Werror)" - bash -c "$(declare -f setup); setup build -Dtests=enabled -Dfault_points=true && ninja -C build"
stage "build (release, as shipped: no fault points)" - bash -c "$(declare -f setup); setup build-release -Dtests=disabled -Dbuildtype=release && ninja -C build-release"
stage "build (ASan+UBSan)" - bash -c "$(declare -f setup); setup build-asan -Dtests=enabled -Dfault_points=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug && ninja -C build-asan"
stage "build (libFuzzer, clang)" - bash -c "$(declare -f setup); CC=clang setup build-fuzz -Dtests=disabled -Dfuzz=true -Dfuzz_runs=${FUZZ_RUNS:-500000} -Db_sanitize=address,undefined -Db_lundef=false && ninja -C build-fuzz"

if [ ! -x build/lifeboat ] || [ ! -x build-asan/lifeboat ]; then
	echo "test.sh: build failed" >&2
	summary
	exit 1
fi

stage "format (clang-format)" - bash -c 'clang-format --dry-run --Werror src/*.[ch] src/*/*.[ch] tests/unit/*.[ch] tests/fuzz/*.c tests/e2e/*.c'
stage "fuzz (libFuzzer+ASan+UBSan, ${FUZZ_RUNS:-500000} inputs each)" "$RESULTS/fuzz.json" \
	bash -c 'meson test -C build-fuzz --suite fuzz --print-errorlogs; rc=$?; cp build-fuzz/meson-logs/testlog.json "$0"; exit $rc' "$RESULTS/fuzz.json"
stage "test servers (Go builds, Azurite from npm; cached in $LB_TEST_CACHE)" - python3 tests/lbservers.py build

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
PYTEST=(python3 -m pytest -q -p no:cacheprovider)
# The end-to-end tests mostly wait on the Docker engine (image builds, containers starting):
# they run beside the unit and integration stages, their output kept for the end.
( stage "end-to-end tests (image, Compose stack, Swarm, exec API under ASan; beside the others)" "$RESULTS/e2e.xml" \
	env LIFEBOAT_PROBE="$ROOT/build-asan/docker-exec-probe" "${PYTEST[@]}" tests/e2e --junitxml="$RESULTS/e2e.xml" ) \
	>"$RESULTS/e2e.log" 2>&1 </dev/null &
E2E_PID=$!

# Timeouts are hang guards, sized for a loaded machine: 600 s per unit test (meson.build).
stage "unit tests (ASan+UBSan)" "$RESULTS/unit-asan.json" \
	bash -c 'meson test -C build-asan --suite unit --print-errorlogs; rc=$?; cp build-asan/meson-logs/testlog.json "$0"; exit $rc' "$RESULTS/unit-asan.json"
stage "unit tests (valgrind)" "$RESULTS/unit-valgrind.json" \
	bash -c 'meson test -C build --suite unit --print-errorlogs --wrapper "valgrind --quiet --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect"; rc=$?; cp build/meson-logs/testlog-valgrind.json "$0"; exit $rc' "$RESULTS/unit-valgrind.json"

stage "integration tests (release build, $JOBS workers)" "$RESULTS/integration.xml" \
	env LIFEBOAT_BIN="$ROOT/build/lifeboat" "${PYTEST[@]}" -n "$JOBS" tests/integration --junitxml="$RESULTS/integration.xml"
stage "integration tests (ASan+UBSan build, without slow tests, $JOBS workers)" "$RESULTS/integration-asan.xml" \
	env LIFEBOAT_BIN="$ROOT/build-asan/lifeboat" "${PYTEST[@]}" -n "$JOBS" -m "not slow" tests/integration --junitxml="$RESULTS/integration-asan.xml"
wait "$E2E_PID"
say "end-to-end tests (ran beside the stages above; their output)"
cat "$RESULTS/e2e.log"

summary
if awk -F'\t' '$3 != 0 { bad = 1 } END { exit !bad }' "$STAGES"; then
	echo "test.sh: failed stages: $(awk -F'\t' '$3 != 0 { printf "%s%s", sep, $1; sep = ", " }' "$STAGES")" >&2
	exit 1
fi
exit 0
