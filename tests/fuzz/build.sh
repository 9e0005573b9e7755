#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for FUZZ_SECONDS (default 15).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build-fuzz
secs=${FUZZ_SECONDS:-15}
mkdir -p "$out"
flags=(-std=c17 -g -O1 -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
clang "${flags[@]}" -o "$out/fuzz-cron" tests/fuzz/fuzz-cron.c src/cron.c src/err.c
# config.c checks DOCKER_HOST with docker.c's parser (no connection is made).
clang "${flags[@]}" -o "$out/fuzz-config" tests/fuzz/fuzz-config.c src/config.c src/compress.c src/cron.c \
	src/retention.c src/err.c src/util.c src/dburi.c src/docker.c -lcurl -ljansson -pthread
clang "${flags[@]}" -o "$out/fuzz-dburi" tests/fuzz/fuzz-dburi.c src/dburi.c src/err.c src/util.c
for t in cron config dburi; do
	rm -rf "$out/corpus-$t"
	cp -r "tests/fuzz/corpus-$t" "$out/corpus-$t"
	echo "fuzz-$t: ${secs}s"
	"$out/fuzz-$t" -max_total_time="$secs" -max_len=512 -print_final_stats=0 \
		"$out/corpus-$t" </dev/null 2>&1 | tail -n 3
done
