#!/usr/bin/env bash
# Run one libFuzzer target for a fixed number of inputs, from the checked-in seed corpus:
#   run-fuzzer.sh TARGET SEED_CORPUS WORK_CORPUS RUNS
# New inputs go to WORK_CORPUS (in the build tree), never into the repository.
set -euo pipefail
target=$1 seeds=$2 work=$3 runs=$4
mkdir -p "$work"
# libFuzzer reports a finding with exit 77 by default, which meson counts as a skip.
exec "$target" -runs="$runs" -max_len=512 -print_final_stats=1 -error_exitcode=1 -timeout_exitcode=1 "$work" "$seeds" </dev/null
