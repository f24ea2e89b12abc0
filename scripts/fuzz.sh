#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60) on the nightly toolchain:
# the /plan request validator, A2A answers (both dialects), a peer's SSE stream, the LLM's SSE
# stream and recipe frontmatter. Installs cargo-fuzz when missing. Exits non-zero on the first
# crash; the reproducer is left in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS]
#   FUZZ_SMOKE=1 scripts/fuzz.sh 10   # CI: a debug build without sanitizer (minutes, not a
#                                     # quarter of an hour), still catching panics and overflows
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-60}"
if [[ "${FUZZ_SMOKE:-0}" == 1 ]]; then
  build=(--dev --sanitizer none)
else
  build=(-O)
fi
if ! command -v cargo-fuzz > /dev/null; then
  cargo install cargo-fuzz --locked
fi
targets=(plan_request a2a_reply a2a_stream llm_stream recipe_frontmatter)
cargo +nightly fuzz build "${build[@]}"
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  # Seed each corpus from the project's own fixtures so the fuzzer starts from real shapes.
  case "$t" in
    recipe_frontmatter) cp -n recipes/*/RECIPE.md fixtures/recipes/*/*.md "fuzz/corpus/$t/" 2>/dev/null || true ;;
    a2a_reply) for f in ../shared/peers/transcripts/*/*.response.json; do
        [[ -f "$f" ]] && { printf '\0'; cat "$f"; } > "fuzz/corpus/$t/$(basename "$f")"; done ;;
    a2a_stream) cp -n ../shared/peers/transcripts/*/*.response.sse.txt "fuzz/corpus/$t/" 2>/dev/null || true ;;
    llm_stream) find ../shared/llm-recordings -name '*.sse' -exec cp -n {} "fuzz/corpus/$t/" \; 2>/dev/null || true ;;
    plan_request) cp -n schemas/*.json "fuzz/corpus/$t/" 2>/dev/null || true ;;
  esac
  echo "fuzz.sh: $t for ${SECONDS_EACH}s"
  cargo +nightly fuzz run "${build[@]}" "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECONDS_EACH" -max_len=262144 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+== ERROR|SUMMARY|.*panicked)' || true
  if compgen -G "fuzz/artifacts/$t/crash-*" > /dev/null; then
    echo "fuzz.sh: $t crashed; reproducers in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
