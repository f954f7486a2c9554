#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/fuzz_targets/) with libFuzzer, each for SECONDS (default 60),
# from its seeds (fuzz/seeds/<target>/) and its campaign's corpus (fuzz/corpus/<target>.tar.gz),
# with its dictionary and a memory limit. Any crash, panic, timeout or out-of-memory fails the
# run, with the input saved under fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]        (all targets when none is named)
#
# New inputs go to a scratch corpus, not into the repository; FUZZ_KEEP=DIR keeps them in
# DIR/<target> instead (a campaign, minimised afterwards with `cargo fuzz cmin`). Needs the
# nightly toolchain and cargo-fuzz (.ci/run installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(csv gzip_csv parquet toml model_dir serve encode)

dict() {
    case $1 in
        csv | gzip_csv | encode) echo csv ;;
        parquet) echo parquet ;;
        toml) echo toml ;;
        model_dir) echo json ;;
        serve) echo serve ;;
        *) echo "unknown fuzz target $1" >&2; exit 2 ;;
    esac
}

# Built once for all targets; no sanitizer (see the README's Fuzzing section), debug assertions
# on. libFuzzer runs on one core: FUZZ_JOBS targets (default: the number of cores) run at once,
# each its own binary straight from cargo-fuzz's target directory.
cargo +nightly fuzz build --sanitizer none
bindir="fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"
jobs=${FUZZ_JOBS:-$(nproc)}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

run_target() { # TARGET: fuzzes it for $seconds; its output in $scratch/TARGET.log, status in .status
    local t=$1 work status
    work=${FUZZ_KEEP:+$FUZZ_KEEP/$t}
    work=${work:-$scratch/$t}
    mkdir -p "$work" "fuzz/artifacts/$t"
    local inputs=("$work" "fuzz/seeds/$t")
    # The campaign's corpus, minimised, committed as one archive per target.
    if [ -f "fuzz/corpus/$t.tar.gz" ]; then
        mkdir -p "$scratch/corpus-$t"
        tar -xzf "fuzz/corpus/$t.tar.gz" -C "$scratch/corpus-$t"
        inputs+=("$scratch/corpus-$t")
    fi
    set +e
    "$bindir/$t" -artifact_prefix="fuzz/artifacts/$t/" \
        -dict="fuzz/dict/$(dict "$t").dict" -max_total_time="$seconds" -max_len=65536 \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "${inputs[@]}" >"$scratch/$t.raw" 2>&1
    status=$?
    set -e
    grep -E '^(#[0-9]+\s+(INITED|DONE)|stat::|==|SUMMARY|thread .* panicked|Test unit written|.*ERROR)' \
        "$scratch/$t.raw" >"$scratch/$t.log" || true
    echo "$status" >"$scratch/$t.status"
}

running=0
for t in "${targets[@]}"; do
    dict "$t" >/dev/null
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
    printf -- '--> %s: %s s\n' "$t" "$seconds"
    run_target "$t" &
    running=$((running + 1))
done
wait || true

failed=0
for t in "${targets[@]}"; do
    printf '\n--> %s\n' "$t"
    cat "$scratch/$t.log"
    status=$(cat "$scratch/$t.status" 2>/dev/null || echo "no status")
    if [ "$status" != 0 ]; then
        echo "fuzz target $t failed (exit $status): see fuzz/artifacts/$t/" >&2
        failed=1
    fi
done
exit "$failed"
