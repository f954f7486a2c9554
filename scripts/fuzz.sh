#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/fuzz_targets/) with libFuzzer, each for SECONDS (default 60),
# from its seeds (fuzz/seeds/<target>/) and its campaign's corpus (fuzz/corpus/<target>.tar.gz),
# with its dictionary and a memory limit. Any crash, panic, timeout or out-of-memory stops the
# run with the input saved under fuzz/artifacts/<target>/.
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
# on.
cargo +nightly fuzz build --sanitizer none
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
    work=${FUZZ_KEEP:+$FUZZ_KEEP/$t}
    work=${work:-$scratch/$t}
    mkdir -p "$work" "fuzz/artifacts/$t"
    inputs=("$work" "fuzz/seeds/$t")
    # The campaign's corpus, minimised, committed as one archive per target.
    if [ -f "fuzz/corpus/$t.tar.gz" ]; then
        mkdir -p "$scratch/corpus-$t"
        tar -xzf "fuzz/corpus/$t.tar.gz" -C "$scratch/corpus-$t"
        inputs+=("$scratch/corpus-$t")
    fi
    printf '\n--> %s: %s s\n' "$t" "$seconds"
    set +e
    cargo +nightly fuzz run --sanitizer none "$t" "${inputs[@]}" -- \
        -dict="fuzz/dict/$(dict "$t").dict" -max_total_time="$seconds" -max_len=65536 \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 |
        grep -E '^(#[0-9]+\s+(INITED|DONE)|stat::|==|SUMMARY|thread .* panicked|Test unit written|.*ERROR)'
    # The fuzzer's status, not grep's.
    status=${PIPESTATUS[0]}
    set -e
    if ((status != 0)); then
        echo "fuzz target $t failed (exit $status): see fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
