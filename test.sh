#!/usr/bin/env bash
# The one test command: installs what it needs, builds a normal and an ASan+UBSan
# configuration, runs the cmocka unit tests (also under valgrind), a short libFuzzer run
# of the cron and environment parsers, and the pytest
# integration tests against the real binary, then prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
export LC_ALL=C.UTF-8

say() { printf '\n==> %s\n' "$*"; }

APT_PACKAGES=(gcc meson ninja-build pkg-config libarchive-dev libssl-dev libjansson-dev
	libcmocka-dev valgrind gnupg tar gzip coreutils clang-format python3 python3-pip
	libcurl4-openssl-dev libmicrohttpd-dev clang libclang-rt-14-dev)

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
	if ! python3 -c 'import pytest' 2>/dev/null; then
		say "installing pytest"
		python3 -m pip install -q pytest 2>/dev/null ||
			python3 -m pip install -q --break-system-packages pytest ||
			{ echo "test.sh: cannot install pytest" >&2; exit 1; }
	fi
}

install_deps

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

stage "build (gcc -Werror)" bash -c "$(declare -f setup); setup build -Dtests=enabled && ninja -C build"
stage "build (ASan+UBSan)" bash -c "$(declare -f setup); setup build-asan -Dtests=enabled -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug && ninja -C build-asan"

if [ ! -x build/lifeboat ] || [ ! -x build-asan/lifeboat ]; then
	echo "test.sh: build failed" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

stage "format (clang-format)" bash -c 'clang-format --dry-run --Werror src/*.[ch] src/stores/*.[ch] tests/unit/*.c tests/fuzz/*.c'
stage "fuzz (libFuzzer+ASan+UBSan, cron and env parsers, ${FUZZ_SECONDS:-15} s each)" tests/fuzz/build.sh

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
