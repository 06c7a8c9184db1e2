#!/usr/bin/env bash
# Generates long, realistic test recordings for scripts/acceptance.sh and for
# memory/speed measurements. The recordings are NOT committed; only this script.
#
#   scripts/make-long-inputs.sh OUTDIR [MINUTES_CALL] [MINUTES_RESPONSE]
#
# Defaults: 2.5 min call, 11.8 min response. Writes, in OUTDIR:
#   call.webm  response.webm  WebM/Opus 32 kb/s, mono 48 kHz, Chrome layout
#                             (unknown-size Segment and Clusters, no Duration,
#                             no Cues; rewritten by scripts/chrome_webm.py)
#   call.ogg   response.ogg   Ogg/Opus 32 kb/s (opusenc), mono 48 kHz
#   call.mp4   response.mp4   fragmented MP4/AAC-LC 64 kb/s, mono 48 kHz (Safari)
#   call.mp3   response.mp3   MP3 mono 44.1 kHz with Xing/Info + LAME tag:
#                             call CBR 64 kb/s, response VBR -V 5
#   call.txt   response.txt   the assembly plan (clip, level, pause)
# Set FORMATS (default "webm ogg mp4 mp3") to write only some of them.
#
# Content: speech clips from Debian packages (see fixtures/README.md for the
# licences): the caller is drawn from pocketsphinx-testdata (LibriVox, cards,
# goforward/numbers/something), the response from the Allison prompts of
# asterisk-core-sounds-en-wav (clips of 1.5-7 s). Clips are trimmed of edge
# silence, peak-normalised to -9 dBFS, drawn in shuffled order and separated by
# pauses of 0.3/0.8/1.5/3/6 s (scripts/long_speech.py). Passages of 15-45 s
# are played at different levels: the call at -3/0/+3 dB, the response at
# -6/0/+6 dB (wide loudness range). Each recording starts with 1 s of room
# tone; a continuous pink-noise floor of about -58 dBFS RMS (fixed seed) runs
# under the whole recording.
#
# Needs ffmpeg, sox, opusenc, lame, python3 (FFmpeg is allowed here only:
# podstitch itself never calls it). Deterministic for given tool versions.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: $0 OUTDIR [MINUTES_CALL] [MINUTES_RESPONSE]}"
min_call="${2:-2.5}"
min_resp="${3:-11.8}"
formats=" ${FORMATS:-webm ogg mp4 mp3} "

librivox=/usr/share/pocketsphinx/test/data
allison=/usr/share/asterisk/sounds/en_US_f_Allison
[[ -d $librivox/librivox && -d $allison ]] ||
    { echo "install pocketsphinx-testdata and asterisk-core-sounds-en-wav" >&2; exit 1; }
for tool in ffmpeg sox soxi opusenc lame python3; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done

mkdir -p "$out"
out="$(cd "$out" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
ff() { ffmpeg -hide_banner -loglevel error -nostdin -y "$@"; }
bitexact=(-map_metadata -1 -fflags +bitexact -flags:a +bitexact)

# --- Clip pools: 48 kHz float, edge silence trimmed, peak -9 dBFS -------------
mkdir -p "$tmp/call" "$tmp/resp"
prep() { # in out [sox input options...]
    local in="$1" o="$2"
    shift 2
    sox -R "$@" "$in" -t f32 -r 48000 -c 1 "$o" \
        silence 1 0.02 -45d reverse silence 1 0.02 -45d reverse gain -n -9 rate -v 48000
}
export -f prep
{
    for f in "$librivox"/librivox/*.wav "$librivox"/cards/*.wav; do
        printf '%s\0%s\0' "$f" "$tmp/call/$(basename "$(dirname "$f")")-$(basename "$f" .wav).f32"
    done
} | xargs -0 -n 2 -P 2 bash -c 'prep "$0" "$1"'
for f in goforward numbers something; do
    prep "$librivox/$f.raw" "$tmp/call/raw-$f.f32" -t s16 -r 16000 -c 1
done
soxi -D "$allison"/*.wav | paste - <(printf '%s\n' "$allison"/*.wav) |
    awk -F '\t' -v d="$tmp/resp" '$1 >= 1.5 && $1 <= 7.0 {
        n = split($2, p, "/"); sub(/\.wav$/, ".f32", p[n]); printf "%s%c%s/%s%c", $2, 0, d, p[n], 0 }' |
    xargs -0 -n 2 -P 2 bash -c 'prep "$0" "$1"'
echo "clips: $(ls "$tmp/call" | wc -l) caller, $(ls "$tmp/resp" | wc -l) response" >&2

# --- Masters: speech + noise floor, 32-bit float WAV, 48 kHz mono -------------
master() { # name minutes seed levels pool noise-seed
    local name="$1" secs
    secs="$(python3 -c "print(round(float('$2') * 60, 3))")"
    python3 "$here/long_speech.py" --seconds "$secs" --seed "$3" --levels="$4" \
        --out "$tmp/$name-speech.f32" "$tmp/$5"/*.f32 2>"$out/$name.txt"
    ff -f lavfi -i "anoisesrc=color=pink:seed=$6:amplitude=0.0066:sample_rate=48000:duration=$secs" \
        -c:a pcm_f32le -f f32le "$tmp/$name-noise.f32"
    sox -R -m -v 1 -t f32 -r 48000 -c 1 "$tmp/$name-speech.f32" \
        -v 1 -t f32 -r 48000 -c 1 "$tmp/$name-noise.f32" -b 32 -e float "$tmp/$name.wav"
    rm -f "$tmp/$name-speech.f32" "$tmp/$name-noise.f32"
    tail -n 1 "$out/$name.txt" >&2
}
master call "$min_call" 101 -3,0,3 call 4242 &
p1=$!
master response "$min_resp" 202 -6,0,6 resp 4243 &
p2=$!
wait "$p1"
wait "$p2"

# --- Encodings -----------------------------------------------------------------
encode() { # name mp3-options...
    local name="$1"
    shift
    # Chrome-style WebM/Opus.
    if [[ $formats == *" webm "* ]]; then
        ff -i "$tmp/$name.wav" -c:a libopus -b:a 32k -ac 1 -ar 48000 "${bitexact[@]}" \
            -f webm -live 1 -cluster_time_limit 2000 -write_crc32 0 pipe:1 >"$tmp/$name-ff.webm"
        python3 "$here/chrome_webm.py" "$tmp/$name-ff.webm" "$out/$name.webm"
    fi
    # Ogg/Opus (opus-tools).
    if [[ $formats == *" ogg "* ]]; then
        opusenc --quiet --bitrate 32 --serial 20240601 --discard-comments \
            "$tmp/$name.wav" "$out/$name.ogg"
    fi
    # Fragmented MP4/AAC-LC as Safari writes it.
    if [[ $formats == *" mp4 "* ]]; then
        ff -i "$tmp/$name.wav" -c:a aac -b:a 64k -ar 48000 -ac 1 "${bitexact[@]}" \
            -movflags frag_keyframe+empty_moov+default_base_moof -frag_duration 1000000 \
            "$out/$name.mp4"
    fi
    # MP3 with LAME tag, 44.1 kHz mono.
    if [[ $formats == *" mp3 "* ]]; then
        sox -R "$tmp/$name.wav" -t s16 -b 16 -e signed "$tmp/$name-44k.s16" rate -v 44100 dither -s
        lame --quiet -r -s 44.1 --bitwidth 16 --signed --little-endian -m m --noreplaygain "$@" \
            "$tmp/$name-44k.s16" "$out/$name.mp3"
    fi
}
encode call -b 64 --cbr &
p1=$!
encode response -V 5 &
p2=$!
wait "$p1"
wait "$p2"
ls -l "$out"/call.* "$out"/response.* >&2
