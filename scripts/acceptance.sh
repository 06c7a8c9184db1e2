#!/usr/bin/env bash
# Acceptance check of `podstitch stitch` on long recordings in every input format.
#
#   scripts/acceptance.sh [PODSTITCH_BIN] [INPUT_DIR]
#
# PODSTITCH_BIN defaults to target/release/podstitch, INPUT_DIR to
# /tmp/podstitch-long (make it with scripts/make-long-inputs.sh INPUT_DIR).
# For each format F in webm, ogg, mp4, mp3 it runs
#   podstitch stitch --call INPUT_DIR/call.F --response INPUT_DIR/response.F
# under /usr/bin/time -v (outputs in $ACCEPTANCE_OUT, default a new temp dir),
# measures every output with `podstitch analyze --json` and checks:
#   - integrated loudness within +-0.3 LU of -16 LUFS;
#   - decoded true peak <= 0.0 dBTP;
#   - longest pause (at -50 dBFS) <= 1.05 s;
#   - leading silence <= 30 ms for the two segments (the episode starts with
#     the intro bumper, so its leading silence is the bumper's: shown, not checked);
#   - episode frames == intro + caller-segment + interstitial + response-segment
#     + outro - 4 x 44100 (four 1 s crossfades), bumper frames from
#     `podstitch analyze --json assets/*.mp3`.
# Prints a table and the wall/CPU time and peak RSS of each stitch run; exits
# non-zero if any check (or any run) fails. Uses only podstitch and python3.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-$repo/target/release/podstitch}"
in="${2:-/tmp/podstitch-long}"
out="${ACCEPTANCE_OUT:-$(mktemp -d /tmp/podstitch-acceptance.XXXXXX)}"
formats=(${FORMATS:-webm ogg mp4 mp3})

[[ -x $bin ]] || { echo "no podstitch binary at $bin (cargo build --release)" >&2; exit 2; }
if [[ ! -x /usr/bin/time ]]; then
    { apt-get update -qq && apt-get install -y -qq time; } >/dev/null ||
        { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
fi
for f in "${formats[@]}"; do
    for r in call response; do
        [[ -f $in/$r.$f ]] || { echo "missing $in/$r.$f (scripts/make-long-inputs.sh $in)" >&2; exit 2; }
    done
done

mkdir -p "$out"
"$bin" analyze --json "$repo"/assets/intro.mp3 "$repo"/assets/interstitial.mp3 \
    "$repo"/assets/outro.mp3 >"$out/assets.json" || { echo "analyze of assets failed" >&2; exit 1; }
for f in "${formats[@]}"; do
    d="$out/$f"
    mkdir -p "$d"
    echo "stitch $f ..." >&2
    /usr/bin/time -v -o "$d/time.txt" "$bin" stitch --call "$in/call.$f" \
        --response "$in/response.$f" --out "$d" >"$d/report.json" 2>"$d/stderr.txt"
    echo $? >"$d/rc"
    if [[ $(cat "$d/rc") == 0 ]]; then
        "$bin" analyze --json "$d/episode.mp3" "$d/caller-segment.mp3" \
            "$d/response-segment.mp3" >"$d/analyze.json" 2>>"$d/stderr.txt"
    fi
done

python3 - "$out" "${formats[@]}" <<'PY'
import json, os, re, sys

out, formats = sys.argv[1], sys.argv[2:]
TARGET, TOL, PEAK, PAUSE, LEAD, XFADE = -16.0, 0.3, 0.0, 1.05, 0.030, 4 * 44100
assets = {os.path.basename(a['file']): a for a in map(json.loads, open(f'{out}/assets.json'))}
intro, inter, outro = (assets[n]['frames'] for n in ('intro.mp3', 'interstitial.mp3', 'outro.mp3'))


def parse_time(path):
    t = open(path).read()
    g = lambda k: re.search(re.escape(k) + r': (.*)', t).group(1).strip()
    wall = 0.0
    for part in g('Elapsed (wall clock) time (h:mm:ss or m:ss)').split(':'):
        wall = wall * 60 + float(part)
    return wall, float(g('User time (seconds)')) + float(g('System time (seconds)')), \
        int(g('Maximum resident set size (kbytes)')) / 1024


failures = []
rows = []
runs = []
for f in formats:
    d = f'{out}/{f}'
    rc = int(open(f'{d}/rc').read())
    wall, cpu, rss = parse_time(f'{d}/time.txt')
    runs.append((f, rc, wall, cpu, rss))
    if rc != 0:
        failures.append(f'{f}: stitch exited {rc}: {open(d + "/stderr.txt").read().strip()[-300:]}')
        continue
    a = {os.path.basename(x['file']): x for x in map(json.loads, open(f'{d}/analyze.json'))}
    rep = json.loads(open(f'{d}/report.json').read().strip().splitlines()[-1])
    cs, rs = a['caller-segment.mp3']['frames'], a['response-segment.mp3']['frames']
    want = intro + cs + inter + rs + outro - XFADE
    for name in ('episode.mp3', 'caller-segment.mp3', 'response-segment.mp3'):
        x = a[name]
        bad = []
        if abs(x['integratedLufs'] - TARGET) > TOL:
            bad.append('LUFS')
        if x['truePeakDbtp'] > PEAK:
            bad.append('dBTP')
        if x['longestPauseS'] > PAUSE:
            bad.append('pause')
        lead = f"{x['leadingSilenceS'] * 1000:.1f}"
        if name == 'episode.mp3':
            lead += ' (intro)'
            frames = f"{x['frames']} {'==' if x['frames'] == want else '!='} {want}"
            if x['frames'] != want:
                bad.append('frames')
        else:
            if x['leadingSilenceS'] > LEAD:
                bad.append('lead')
            frames = str(x['frames'])
        key = {'episode.mp3': 'episode', 'caller-segment.mp3': 'callerSegment',
               'response-segment.mp3': 'responseSegment'}[name]
        if rep.get(key, {}).get('frames') not in (None, x['frames']):
            frames += f" (report {rep[key]['frames']})"
        rows.append((f, name, f"{x['integratedLufs']:.2f}", f"{x['truePeakDbtp']:.2f}",
                     f"{x['longestPauseS']:.3f}", lead, frames, 'ok' if not bad else 'FAIL ' + ','.join(bad)))
        for b in bad:
            failures.append(f'{f} {name}: {b}')
    for who in ('caller', 'response'):
        r = rep.get(who, {})
        print(f"{f} {who}: {r.get('format')} {r.get('inputDurationS', 0):.1f} s -> {r.get('durationS', 0):.1f} s, "
              f"in {r.get('inputIntegratedLufs', 0):.1f} LUFS LRA {r.get('inputLraLu', 0):.1f}, "
              f"leveller {r.get('leveller')}, gain {r.get('gainDb', 0):+.1f} dB, "
              f"{r.get('pausesShortened')} pauses shortened")

head = ('format', 'output', 'LUFS', 'dBTP', 'pause s', 'lead ms', 'frames', 'verdict')
w = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
print()
for r in [head] + rows:
    print('  '.join(str(c).ljust(w[i]) for i, c in enumerate(r)))
print(f'\nbumpers: intro {intro}, interstitial {inter}, outro {outro} frames; crossfades {XFADE}')
print('\nformat  rc  wall s   CPU s   peak RSS MiB')
for f, rc, wall, cpu, rss in runs:
    print(f'{f:<6}  {rc:<2}  {wall:6.2f}  {cpu:6.2f}  {rss:8.1f}')
print(f'\noutputs in {out}')
if failures:
    print('\nFAILED:\n  ' + '\n  '.join(failures))
    sys.exit(1)
print('\nall checks passed')
PY
