#!/usr/bin/env bash
# Prints the sha256 of every output of a fixed set of runs, one "HASH  NAME"
# line each, sorted: the README's stitch command (the three MP3s, --plot's
# SVGs, --waveform's JSON), `analyze --json` of those MP3s and of the
# fixtures, and every output the end-to-end tests stitch in memory
# (PODSTITCH_KEEP_OUTPUTS, see tests/common). A behaviour-preserving change
# must leave this list unchanged:
#
#   scripts/output-hashes.sh > before.txt
#   ...change the code...
#   scripts/output-hashes.sh > after.txt && diff before.txt after.txt
#
# Only the report's `timings`/`*Seconds` figures vary between runs; they are
# removed before hashing the JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet
bin=$repo/target/release/podstitch
# Relative output paths: the SVG titles and analyze's JSON name their files.
mkdir -p "$work/readme"
(
    cd "$work"
    "$bin" stitch -q --call "$repo/fixtures/caller.webm" --response "$repo/fixtures/response.ogg" \
        --out readme --plot readme/plot --waveform readme/waveform > readme/report.json
    "$bin" analyze --json readme/*.mp3 "$repo/fixtures/caller.webm" "$repo/fixtures/response.ogg" \
        "$repo/fixtures/response.mp3" "$repo/fixtures/speech-s24.wav" > readme/analyze.json
)
for j in "$work"/readme/report.json "$work"/readme/analyze.json; do
    python3 - "$j" <<'PY'
import json, sys
p = sys.argv[1]
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k != "timings" and not k.endswith("Seconds")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
lines = [json.dumps(strip(json.loads(l)), sort_keys=True) for l in open(p) if l.strip()]
open(p, "w").write("\n".join(lines) + "\n")
PY
done
PODSTITCH_KEEP_OUTPUTS="$work/tests" cargo test --quiet --test e2e_goldens --test listener \
    --test front_end --test decode_gaps --test bad_inputs >/dev/null 2>&1 \
    || { echo "output-hashes: the tests failed; run them to see why" >&2; exit 1; }
(cd "$work" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
