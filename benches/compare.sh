#!/usr/bin/env bash
# Side-by-side cost of podstitch, the reference FFmpeg graph it replaces, and
# the LAME-only floor, on the same long WebM/Opus recordings.
#
#   benches/compare.sh [--full] [--with-debian-ffmpeg] [--table] [DIR]
#
# DIR (default /tmp/podstitch-compare) holds the inputs, one directory per
# case (m14 = 2.5 min call + 11.8 min response; m5, m15, m60 = 2.5 min call +
# 5/15/60 min response), made with scripts/make-long-inputs.sh (FORMATS=webm)
# unless DIR/CASE/call.webm and response.webm already exist; and runs/, the
# outputs and raw measurements of the last run.
#
#   quick (default): the 14.3-minute case, 1 run.
#   --full:          the 14.3-minute case and 5, 15, 60-minute responses,
#                    3 runs each, medians reported.
#   --with-debian-ffmpeg: also time the graph with the system `ffmpeg`
#                    (Debian 12 ships 5.1, whose silenceremove differs).
#   --with-no-verify: also time `podstitch stitch --no-verify` (podstitch-nv),
#                    which shows what verifying the three MP3s costs.
#   --table:         run nothing; print the table again from DIR/runs/raw.tsv
#                    (also of an interrupted run: medians of the runs done).
#
# Per case and run, one after the other (so they see the same machine load):
#   ffmpeg-9   the reference graph (below) with the static FFmpeg from PyPI's
#              imageio-ffmpeg wheel (installed with pip if missing);
#   podstitch  target/release/podstitch stitch (built if missing; or set
#              PODSTITCH_BIN), bumpers from assets/;
#   lame-seq   the floor: the `lame` CLI encoding the same three outputs at
#              podstitch's settings (episode 128 kb/s CBR joint stereo q3,
#              segments 64 kb/s CBR mono q3, no ReplayGain analysis), one
#              after the other: its CPU time is what any implementation pays;
#   lame-par   the same three encodes started together: the floor's wall time
#              on this machine (bounded by the episode, the longest encode).
# The floor's inputs are 16-bit WAVs of podstitch's own outputs, decoded with
# FFmpeg before the timed region. Each command is timed by /usr/bin/time
# (wall, user+sys, max RSS). The table gives medians and the ratios
# FFmpeg wall / podstitch wall (target >= 3) and podstitch CPU / floor CPU
# (target <= 1.15). FFmpeg is used by this script only, never by podstitch.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
full=0 ff5=0 nv=0 table_only=0 dir=/tmp/podstitch-compare
for a in "$@"; do
    case $a in
    --full) full=1 ;;
    --with-debian-ffmpeg) ff5=1 ;;
    --with-no-verify) nv=1 ;;
    --table) table_only=1 ;;
    -h | --help) sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $a" >&2; exit 2 ;;
    *) dir=$a ;;
    esac
done
if ((full)); then
    cases=(m14 m5 m15 m60) runs=3
else
    cases=(m14) runs=1
fi
declare -A call_min=([m14]=2.5 [m5]=2.5 [m15]=2.5 [m60]=2.5)
declare -A resp_min=([m14]=11.8 [m5]=5 [m15]=15 [m60]=60)

# --- Tools -----------------------------------------------------------------------
py=$(command -v python3)
bin=${PODSTITCH_BIN:-$repo/target/release/podstitch}
runs_dir="$dir/runs"
raw="$runs_dir/raw.tsv"
if ((table_only)); then
    [[ -f $raw ]] || { echo "no $raw" >&2; exit 2; }
    full=$(awk -F '\t' 'NR > 1 && $3 > 1 { f = 1 } END { print f + 0 }' "$raw")
    runs=$(awk -F '\t' 'NR > 1 && $3 > m { m = $3 } END { print m }' "$raw")
    mapfile -t cases < <(awk -F '\t' 'NR > 1 && !s[$1]++ { print $1 }' "$raw")
    ff9_name="FFmpeg 9 (imageio-ffmpeg)"
    [[ -f $runs_dir/ffmpeg-versions.txt ]] && ff9_name=$(head -n 1 "$runs_dir/ffmpeg-versions.txt")
else
need_apt=()
[[ -x /usr/bin/time ]] || need_apt+=(time)
command -v lame >/dev/null || need_apt+=(lame)
if ((${#need_apt[@]})); then
    echo "installing ${need_apt[*]} (apt)" >&2
    { apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"; } >/dev/null
fi
ff9=$("$py" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())' 2>/dev/null) || {
    echo "installing imageio-ffmpeg (pip) for a static FFmpeg 9" >&2
    "$py" -m pip install -q imageio-ffmpeg >&2
    ff9=$("$py" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')
}
ff_version() { "$1" -hide_banner -version | head -n 1 | cut -d ' ' -f 1-3; }
ff9_name=$(ff_version "$ff9")
if ((ff5)); then
    ff5_bin=$(command -v ffmpeg) || { echo "--with-debian-ffmpeg: no ffmpeg on PATH" >&2; exit 2; }
    ff5_name=$(ff_version "$ff5_bin")
fi
if [[ ! -x $bin ]]; then
    echo "building podstitch (release)" >&2
    (cd "$repo" && cargo build --release --locked -q)
fi

# --- Inputs --------------------------------------------------------------------
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
for c in "${cases[@]}"; do
    if [[ ! -f $dir/$c/call.webm || ! -f $dir/$c/response.webm ]]; then
        echo "making inputs $c (${call_min[$c]} + ${resp_min[$c]} min)" >&2
        FORMATS=webm "$repo/scripts/make-long-inputs.sh" "$dir/$c" "${call_min[$c]}" "${resp_min[$c]}" 2>/dev/null
    fi
done
rm -rf "$runs_dir"
mkdir -p "$runs_dir"
echo "$ff9_name" >"$runs_dir/ffmpeg-versions.txt"
printf 'case\ttool\trun\twall_s\tcpu_s\trss_kib\tload1\n' >"$raw"

# The reference graph: the same filter graph as ../shared/reference/reference-graph.sh
# (the production FFmpeg command podstitch replaces), with local files.
reference_graph() { # ffmpeg call response assets out
    local ff=$1 call=$2 response=$3 assets=$4 out=$5
    mkdir -p "$out"
    "$ff" -y -hide_banner -nostats -nostdin -loglevel error \
        -i "$assets/intro.mp3" -i "$call" -i "$assets/interstitial.mp3" -i "$response" -i "$assets/outro.mp3" \
        -filter_complex "
    [1]silenceremove=1:0:-50dB[trimmedCall];
    [3]silenceremove=1:0:-50dB[trimmedResponse];
    [trimmedCall]silenceremove=stop_periods=-1:stop_duration=1:stop_threshold=-50dB[noSilenceCall];
    [trimmedResponse]silenceremove=stop_periods=-1:stop_duration=1:stop_threshold=-50dB[noSilenceResponse];
    [noSilenceCall]loudnorm=I=-16:LRA=11:TP=0.0[call0];
    [noSilenceResponse]loudnorm=I=-16:LRA=11:TP=0.0[response0];
    [call0]asplit=2[callForEpisode][callForStandalone];
    [response0]asplit=2[responseForEpisode][responseForStandalone];
    [0][callForEpisode]acrossfade=d=1:c2=nofade[a01];
    [a01][2]acrossfade=d=1:c1=nofade[a02];
    [a02][responseForEpisode]acrossfade=d=1:c2=nofade[a03];
    [a03][4]acrossfade=d=1:c1=nofade[out]" \
        -map "[callForStandalone]" "$out/caller-segment.mp3" \
        -map "[responseForStandalone]" "$out/response-segment.mp3" \
        -map "[out]" "$out/episode.mp3"
}
lame_one() { # in.wav out.mp3 kbps mode
    lame --quiet --noreplaygain -q 3 --cbr -b "$3" -m "$4" "$1" "$2"
}
lame_seq() { # wavdir out
    lame_one "$1/episode.wav" "$2/episode.mp3" 128 j
    lame_one "$1/caller-segment.wav" "$2/caller-segment.mp3" 64 m
    lame_one "$1/response-segment.wav" "$2/response-segment.mp3" 64 m
}
lame_par() { # wavdir out
    lame_one "$1/episode.wav" "$2/episode.mp3" 128 j &
    lame_one "$1/caller-segment.wav" "$2/caller-segment.mp3" 64 m &
    lame_one "$1/response-segment.wav" "$2/response-segment.mp3" 64 m &
    wait
}
export -f reference_graph lame_one lame_seq lame_par

# timed CASE TOOL RUN OUTDIR COMMAND...: runs COMMAND under /usr/bin/time, appends a row to raw.tsv.
timed() {
    local c=$1 tool=$2 run=$3 out=$4 load
    shift 4
    mkdir -p "$out"
    load=$(cut -d ' ' -f 1 /proc/loadavg)
    if ! /usr/bin/time -f '%e %U %S %M' -o "$out/time.txt" "$@" >"$out/stdout.txt" 2>"$out/stderr.txt"; then
        echo "$tool failed on $c (see $out/stderr.txt)" >&2
        cat "$out/stderr.txt" >&2
        exit 1
    fi
    read -r e u s m <"$out/time.txt"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$tool" "$run" "$e" \
        "$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')" "$m" "$load" >>"$raw"
    printf '  %-4s %-11s run %s: wall %6.2f s  cpu %6.2f s  rss %4d MiB  (load %s)\n' \
        "$c" "$tool" "$run" "$e" "$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')" $((m / 1024)) "$load" >&2
}

echo "FFmpeg: $ff9_name ($ff9)" >&2
# Runs are the outer loop: every case gets its first run before any gets a
# second, so a change in machine load spreads over the cases.
for ((r = 1; r <= runs; r++)); do
    for c in "${cases[@]}"; do
        in="$dir/$c"
        o="$runs_dir/$c/$r"
        timed "$c" ffmpeg-9 "$r" "$o/ffmpeg-9" \
            bash -c 'reference_graph "$@"' _ "$ff9" "$in/call.webm" "$in/response.webm" "$repo/assets" "$o/ffmpeg-9"
        if ((ff5)); then
            timed "$c" ffmpeg-deb "$r" "$o/ffmpeg-deb" \
                bash -c 'reference_graph "$@"' _ "$ff5_bin" "$in/call.webm" "$in/response.webm" "$repo/assets" "$o/ffmpeg-deb"
        fi
        timed "$c" podstitch "$r" "$o/podstitch" \
            "$bin" stitch --call "$in/call.webm" --response "$in/response.webm" --assets "$repo/assets" --out "$o/podstitch"
        if ((nv)); then
            timed "$c" podstitch-nv "$r" "$o/podstitch-nv" \
                "$bin" stitch --no-verify --call "$in/call.webm" --response "$in/response.webm" --assets "$repo/assets" --out "$o/podstitch-nv"
        fi
        wav="$runs_dir/$c/wav"
        if [[ ! -d $wav ]]; then # the floor's inputs, untimed
            mkdir -p "$wav"
            for f in episode caller-segment response-segment; do
                "$ff9" -hide_banner -loglevel error -nostdin -y -i "$o/podstitch/$f.mp3" -c:a pcm_s16le "$wav/$f.wav"
            done
        fi
        timed "$c" lame-seq "$r" "$o/lame-seq" bash -c 'lame_seq "$@"' _ "$wav" "$o/lame-seq"
        timed "$c" lame-par "$r" "$o/lame-par" bash -c 'lame_par "$@"' _ "$wav" "$o/lame-par"
    done
done
rm -rf "$runs_dir"/*/wav
fi # measuring

# --- Table -----------------------------------------------------------------------
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
echo
echo "podstitch $("$bin" --version 2>/dev/null | cut -d ' ' -f 2) ($(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?')) vs $ff9_name${ff5_name:+ and $ff5_name} vs $(lame --version | head -n 1 | cut -d '(' -f 1)"
echo "CPU: $cpu, nproc $(nproc), $(free -g | awk '/^Mem:/ { print $2 }') GiB; kernel $(uname -r)"
echo "mode: $( ((full)) && echo "--full, $runs runs, medians" || echo "quick, $runs run")"
"$py" - "$raw" "$runs_dir" "${cases[@]}" <<'PY'
import json, statistics as st, sys, glob, os
raw, runs_dir, cases = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [l.rstrip('\n').split('\t') for l in open(raw)][1:]
mins = {'m14': (2.5, 11.8), 'm5': (2.5, 5), 'm15': (2.5, 15), 'm60': (2.5, 60)}
def med(c, t, k):
    v = [float(r[k]) for r in rows if r[0] == c and r[1] == t]
    return st.median(v) if v else None
tools = [t for t in ('ffmpeg-9', 'ffmpeg-deb', 'podstitch', 'podstitch-nv', 'lame-seq', 'lame-par') if any(r[1] == t for r in rows)]
loads = [float(r[6]) for r in rows]
print(f"load average (1 min) at the start of each timed command: min {min(loads):.2f}, median {st.median(loads):.2f}, max {max(loads):.2f}")
print()
print("| case (call + response) | command | wall s | CPU s | peak RSS MiB | CPU s per input min | FFmpeg-9 wall ÷ this wall | this CPU ÷ floor CPU |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for c in cases:
    a, b = mins[c]
    fw, fc = med(c, 'ffmpeg-9', 3), med(c, 'lame-seq', 4)
    for t in tools:
        w, u, m = med(c, t, 3), med(c, t, 4), med(c, t, 5)
        if w is None:
            continue
        print(f"| {a:g} + {b:g} min | {t} | {w:.2f} | {u:.2f} | {m / 1024:.0f} | {u / (a + b):.3f} | {fw / w:.2f} | {u / fc:.2f} |")
print()
print("podstitch stage times (report `timings`, medians, seconds):")
print("| case | analyseS | calibrateS | renderS | verifyS |")
print("|---|---:|---:|---:|---:|")
for c in cases:
    ts = []
    for f in sorted(glob.glob(f"{runs_dir}/{c}/*/podstitch/stdout.txt")):
        lines = open(f).read().strip().splitlines()
        if lines:  # empty while a run is in progress
            ts.append(json.loads(lines[-1])['timings'])
    if ts:
        k = ['analyseS', 'calibrateS', 'renderS', 'verifyS']
        print(f"| {c} | " + " | ".join(f"{st.median(t[x] for t in ts):.2f}" for x in k) + " |")
PY
echo
echo "raw measurements: $raw"
