#!/usr/bin/env bash
# Side-by-side cost of podstitch, the reference FFmpeg graph it replaces, and
# the LAME-only floor, on the same long WebM/Opus recordings.
#
#   benches/compare.sh [--full] [--with-debian-ffmpeg] [--with-no-verify]
#                      [--cpus F] [--ab BIN_B] [--runs N] [--table] [DIR]
#
# DIR (default /tmp/podstitch-compare) holds the inputs, one directory per
# case (m14 = 2.5 min call + 11.8 min response; m5, m15, m60 = 2.5 min call +
# 5/15/60 min response), made with scripts/make-long-inputs.sh (FORMATS=webm)
# unless DIR/CASE/call.webm and response.webm already exist (then the table
# takes the lengths from podstitch's report, so shorter files serve for a
# quick check); and runs/, the outputs and raw measurements of the last run.
#
#   quick (default): the 14.3-minute case, 1 run.
#   --full:          the 14.3-minute case and 5, 15, 60-minute responses,
#                    3 runs each, medians reported.
#   --runs N:        N runs of each case instead (medians reported).
#   --with-debian-ffmpeg: also time the graph with the system `ffmpeg`
#                    (Debian 12 ships 5.1, whose silenceremove differs).
#   --with-no-verify: also time `podstitch stitch --no-verify` (podstitch-nv),
#                    which shows what verifying the three MP3s costs.
#   --cpus F:        run every timed command under a CPU quota of F CPUs (any
#                    positive fraction, 0.01 or more: 0.5, 0.25, 2), as the
#                    job gets in a container with a CPU limit. One cgroup per
#                    script run (podstitch-compare-PID): cgroup v2 cpu.max when
#                    /sys/fs/cgroup/cgroup.controllers lists cpu, else cgroup
#                    v1 cpu.cfs_quota_us / cpu.cfs_period_us (100000 us) under
#                    /sys/fs/cgroup/cpu; removed on exit. Needs root and one of
#                    the two writable; without them the script says so and
#                    exits with status 3 (skipped) rather than measure without
#                    the quota. Found on a 2-vCPU machine with cgroup v1 and a
#                    0.5 CPU quota: `nproc` inside the group still prints 2
#                    (it counts the CPUs the scheduler may use, not the
#                    quota), while std's available_parallelism() honours the
#                    v1 quota (quota / period rounded down, at least 1) and
#                    podstitch starts one encoder thread instead of two.
#   --ab BIN_B:      also time a second podstitch binary (podstitch-b) right
#                    next to the first in every run, the order swapped every
#                    other run; the table adds podstitch-b / podstitch ratios.
#   --table:         run nothing; print the table again from DIR/runs/raw.tsv
#                    (also of an interrupted run: medians of the runs done).
#
# Per case and run, one after the other (so they see the same machine load):
#   ffmpeg-9   the reference graph (below) with the static FFmpeg from PyPI's
#              imageio-ffmpeg wheel (installed with pip if missing);
#   podstitch  target/release/podstitch stitch (built if missing; or set
#              PODSTITCH_BIN), bumpers from assets/, --temp-dir a directory
#              under DIR/runs whose total size is sampled every 50 ms (peak
#              temporary disk: the spools of the two passes);
#   lame-seq   the floor: the `lame` CLI encoding the same three outputs at
#              podstitch's settings (episode 128 kb/s CBR joint stereo q3,
#              segments 64 kb/s CBR mono q3, no ReplayGain analysis), one
#              after the other: its CPU time is what any implementation pays;
#   lame-par   the same three encodes started together: the floor's wall time
#              on this machine (bounded by the episode, the longest encode);
#   lame-linked the same three encodes, one after the other, by the LAME that
#              podstitch links (examples/encode_wav.rs, built if missing):
#              the check that the floor's `lame` and podstitch's LAME cost
#              the same CPU time on the same WAVs (its "this CPU ÷ floor CPU").
# The floor's inputs are 16-bit WAVs of podstitch's own outputs, decoded with
# FFmpeg before the timed region. Each command is timed by /usr/bin/time
# (wall, user+sys, max RSS). The table gives medians and the ratios
# FFmpeg wall / podstitch wall (target >= 3, at quota 0.5 and on 2 cores) and
# podstitch CPU / floor CPU (target <= 1.3, verification on; issue 17).
# FFmpeg is used by this script only, never by podstitch.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
full=0 ff5=0 nv=0 table_only=0 dir=/tmp/podstitch-compare cpus='' bin_b='' runs_opt=''
while (($#)); do
    a=$1
    shift
    case $a in
    --full) full=1 ;;
    --with-debian-ffmpeg) ff5=1 ;;
    --with-no-verify) nv=1 ;;
    --table) table_only=1 ;;
    --cpus | --ab | --runs)
        (($#)) || { echo "$a needs a value" >&2; exit 2; }
        case $a in --cpus) cpus=$1 ;; --ab) bin_b=$1 ;; --runs) runs_opt=$1 ;; esac
        shift
        ;;
    --runs=*) runs_opt=${a#*=} ;;
    --cpus=*) cpus=${a#*=} ;;
    --ab=*) bin_b=${a#*=} ;;
    # The help is the header comment: line 2 up to the first line that is not a comment.
    -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "unknown option $a" >&2; exit 2 ;;
    *) dir=$a ;;
    esac
done
if ((full)); then
    cases=(m14 m5 m15 m60) runs=3
else
    cases=(m14) runs=1
fi
if [[ -n $runs_opt ]]; then
    [[ $runs_opt =~ ^[1-9][0-9]*$ ]] || { echo "--runs needs a positive whole number, not '$runs_opt'" >&2; exit 2; }
    runs=$runs_opt
fi
declare -A call_min=([m14]=2.5 [m5]=2.5 [m15]=2.5 [m60]=2.5)
declare -A resp_min=([m14]=11.8 [m5]=5 [m15]=15 [m60]=60)

# --- CPU quota (--cpus) ----------------------------------------------------------
# One cgroup for the whole script run; each timed command is moved into it by a
# wrapper shell that writes its own PID into cgroup.procs and then execs
# /usr/bin/time, so the timer, the command and every child they start count
# against the quota, and nothing else does (the temp sampler stays outside).
# PODSTITCH_CGROUP_ROOT replaces /sys/fs/cgroup, to try the skip path.
cg_base=${PODSTITCH_CGROUP_ROOT:-/sys/fs/cgroup}
cg_dir='' cg_parent_procs='' cg_desc='' cg_nproc='' sampler_pid=''
cleanup() {
    if [[ -n $sampler_pid ]]; then
        kill "$sampler_pid" 2>/dev/null || true
        wait "$sampler_pid" 2>/dev/null || true
    fi
    [[ -n $cg_dir && -d $cg_dir ]] || return 0
    # A cgroup with processes in it cannot be removed: whatever an interrupted
    # command left behind goes back to the parent group first.
    local p
    while read -r p; do
        echo "$p" >"$cg_parent_procs" 2>/dev/null || true
    done <"$cg_dir/cgroup.procs"
    rmdir "$cg_dir" 2>/dev/null || { sleep 0.5 && rmdir "$cg_dir" 2>/dev/null; } ||
        echo "could not remove the cgroup $cg_dir" >&2
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cg_skip() { # why
    echo "--cpus skipped: $1; it needs root and a writable cgroup v1 cpu controller ($cg_base/cpu/cpu.cfs_quota_us) or cgroup v2 with the cpu controller delegated ($cg_base/cgroup.controllers listing cpu)" >&2
    exit 3
}
cg_setup() { # quota_us period_us; sets cg_dir, cg_parent_procs, cg_desc, or fails
    local quota=$1 period=$2 name="podstitch-compare-$$" v1
    if [[ -f $cg_base/cgroup.controllers ]] && grep -qw cpu "$cg_base/cgroup.controllers"; then
        # cgroup v2: children get the cpu controller only once it is in the
        # parent's subtree_control (usually so already under systemd).
        grep -qw cpu "$cg_base/cgroup.subtree_control" ||
            echo +cpu >"$cg_base/cgroup.subtree_control" 2>/dev/null || return 1
        mkdir "$cg_base/$name" 2>/dev/null || return 1
        cg_dir=$cg_base/$name cg_parent_procs=$cg_base/cgroup.procs
        echo "$quota $period" >"$cg_dir/cpu.max" 2>/dev/null || return 1
        [[ $(cat "$cg_dir/cpu.max") == "$quota $period" ]] || return 1
        cg_desc="cgroup v2 cpu.max $quota $period"
    else
        v1=$cg_base/cpu
        [[ -f $v1/cpu.cfs_quota_us ]] || return 1
        mkdir "$v1/$name" 2>/dev/null || return 1
        cg_dir=$v1/$name cg_parent_procs=$v1/cgroup.procs
        { echo "$period" >"$cg_dir/cpu.cfs_period_us" && echo "$quota" >"$cg_dir/cpu.cfs_quota_us"; } 2>/dev/null || return 1
        [[ $(cat "$cg_dir/cpu.cfs_quota_us") == "$quota" && $(cat "$cg_dir/cpu.cfs_period_us") == "$period" ]] || return 1
        cg_desc="cgroup v1 cfs_quota_us $quota / $period"
    fi
    # Moving a process in is the last thing that can be refused; try it once
    # and note what nproc says inside (the CPUs, not the quota).
    cg_nproc=$(bash -c 'echo $$ >"$0/cgroup.procs" && exec nproc' "$cg_dir" 2>/dev/null) || return 1
}
if ((!table_only)) && [[ -n $cpus ]]; then
    [[ $cpus =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] || { echo "--cpus wants a positive number of CPUs, not '$cpus'" >&2; exit 2; }
    # The kernel's smallest quota is 1 ms per period: 0.01 CPU.
    cg_quota=$(awk -v f="$cpus" 'BEGIN { printf "%d", f * 100000 + 0.5 }')
    ((cg_quota >= 1000)) || { echo "--cpus: at least 0.01" >&2; exit 2; }
    cg_setup "$cg_quota" 100000 || cg_skip "no writable cgroup with the cpu controller under $cg_base${cg_dir:+ (failed at $cg_dir)}"
    cpus=$(awk -v f="$cpus" 'BEGIN { printf "%g", f }')
    cg_line="CPU quota: $cpus CPU$(awk -v f="$cpus" 'BEGIN { if (f > 1) print "s" }') ($cg_desc), nproc inside the group $cg_nproc"
    echo "$cg_line" >&2
fi

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
    cg_line="CPU quota: none"
    [[ -f $runs_dir/cpu-quota.txt ]] && cg_line=$(head -n 1 "$runs_dir/cpu-quota.txt")
    [[ -f $runs_dir/podstitch-b.txt ]] && b_name=$(head -n 1 "$runs_dir/podstitch-b.txt")
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
encode_wav=$repo/target/release/examples/encode_wav
if [[ ! -x $encode_wav ]]; then
    echo "building examples/encode_wav (release)" >&2
    (cd "$repo" && cargo build --release --locked -q --example encode_wav)
fi
export encode_wav
if [[ -n $bin_b ]]; then
    [[ -x $bin_b ]] || { echo "--ab: $bin_b is not an executable" >&2; exit 2; }
    bin_b=$(cd "$(dirname "$bin_b")" && pwd)/$(basename "$bin_b")
    b_name="podstitch-b: $bin_b ($("$bin_b" --version 2>/dev/null || echo '?'))"
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
# The conditions --table prints again: the quota, the second binary.
echo "${cg_line:=CPU quota: none}" >"$runs_dir/cpu-quota.txt"
[[ -z ${b_name:-} ]] || echo "$b_name" >"$runs_dir/podstitch-b.txt"
# tmp_peak_kib: the largest total size seen in the command's --temp-dir, KiB;
# empty for the commands that have none.
printf 'case\ttool\trun\twall_s\tcpu_s\trss_kib\tload1\ttmp_peak_kib\n' >"$raw"

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
linked_seq() { # wavdir out: the same encodes with podstitch's LAME
    "$encode_wav" "$1/episode.wav" "$2/episode.mp3" 128 3
    "$encode_wav" "$1/caller-segment.wav" "$2/caller-segment.mp3" 64 3
    "$encode_wav" "$1/response-segment.wav" "$2/response-segment.mp3" 64 3
}
export -f reference_graph lame_one lame_seq lame_par linked_seq

# The temp sampler: one Python process (not a du every 50 ms, which would fork
# twenty times a second) that sums the sizes of everything under the
# directory and, on SIGTERM, writes the largest sum in bytes. It walks the
# whole --temp-dir, since podstitch spools into subdirectories it makes there
# (podstitch-PID-...) and removes at the end. It looks every 50 ms and, through
# inotify, right after any file or directory is made or removed: the peak is
# the moment before a spool is removed (the trimmed spool complete, the
# untrimmed one it was cut from still there), which lasts only while the
# trimmed one is written, and polling alone came out up to 2.3 MiB short on a
# 1.5-minute input. A file gone since the last look counts with its last size
# (it was complete: spools are removed once read), so a removal seen a moment
# late still finds the peak; files are keyed by inode, so a rename is not a
# removal. Without inotify it only polls. It runs outside the quota group: it
# is started by this shell, never by the wrapper.
# shellcheck disable=SC2016 # Python, not shell
sampler_py='
import ctypes, os, select, signal, sys
root, out = sys.argv[1], sys.argv[2]
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
try:
    libc = ctypes.CDLL(None, use_errno=True)
    ino = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
except (OSError, AttributeError):
    ino = -1
watched = set()
def scan(d, sizes):
    if ino >= 0 and d not in watched:
        mask = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        if libc.inotify_add_watch(ino, os.fsencode(d), mask) >= 0:
            watched.add(d)
    try:
        entries = os.scandir(d)
    except OSError:
        return
    with entries:
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    scan(e.path, sizes)
                else:
                    sizes[e.inode()] = e.stat(follow_symlinks=False).st_size
            except OSError:
                pass  # removed while we looked
known, peak = {}, 0
def look():
    global known, peak
    now = {}
    scan(root, now)
    gone = sum(s for i, s in known.items() if i not in now)
    peak = max(peak, sum(now.values()) + gone)
    known = now
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
poller = select.poll()
if ino >= 0:
    poller.register(ino, select.POLLIN)
look()
open(out + ".ready", "w").close()
while not stop:
    if poller.poll(50):
        try:
            while os.read(ino, 65536):
                pass
        except BlockingIOError:
            pass
    look()
look()
with open(out, "w") as f:
    f.write(f"{peak}\n")
'
# The wrapper that enters the quota group, then execs the timer.
# shellcheck disable=SC2016 # expanded by the wrapper
in_group=(bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"')

# timed CASE TOOL RUN OUTDIR TMPDIR|- COMMAND...: runs COMMAND under /usr/bin/time (in the quota
# group with --cpus), samples TMPDIR's size meanwhile (COMMAND must put its temp files there),
# appends a row to raw.tsv.
timed() {
    local c=$1 tool=$2 run=$3 out=$4 tmp=$5 load wrap=() peak_kib='' peak_b
    shift 5
    mkdir -p "$out"
    [[ -z $cg_dir ]] || wrap=("${in_group[@]}" "$cg_dir")
    if [[ $tmp != - ]]; then
        mkdir -p "$tmp"
        rm -f "$out/tmp-peak" "$out/tmp-peak.ready"
        "$py" -c "$sampler_py" "$tmp" "$out/tmp-peak" &
        sampler_pid=$!
        # Start timing only once the sampler has taken its first look.
        while [[ ! -f $out/tmp-peak.ready ]]; do
            kill -0 "$sampler_pid" 2>/dev/null || { echo "the temp sampler failed" >&2; exit 1; }
            sleep 0.01
        done
    fi
    load=$(cut -d ' ' -f 1 /proc/loadavg)
    if ! "${wrap[@]}" /usr/bin/time -f '%e %U %S %M' -o "$out/time.txt" "$@" >"$out/stdout.txt" 2>"$out/stderr.txt"; then
        echo "$tool failed on $c (see $out/stderr.txt)" >&2
        cat "$out/stderr.txt" >&2
        exit 1
    fi
    if [[ $tmp != - ]]; then
        kill -TERM "$sampler_pid"
        wait "$sampler_pid" || { echo "the temp sampler failed" >&2; exit 1; }
        sampler_pid=''
        read -r peak_b <"$out/tmp-peak"
        peak_kib=$(((peak_b + 1023) / 1024))
        rm -f "$out/tmp-peak" "$out/tmp-peak.ready"
        # podstitch removes what it made; anything left is worth knowing.
        rmdir "$tmp" 2>/dev/null || echo "  $tool left files in $tmp" >&2
    fi
    read -r e u s m <"$out/time.txt"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$tool" "$run" "$e" \
        "$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')" "$m" "$load" "$peak_kib" >>"$raw"
    printf '  %-4s %-12s run %s: wall %6.2f s  cpu %6.2f s  rss %4d MiB%s  (load %s)\n' \
        "$c" "$tool" "$run" "$e" "$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')" $((m / 1024)) \
        "${peak_kib:+  temp $(awk -v k="$peak_kib" 'BEGIN { printf "%.1f", k / 1024 }') MiB}" "$load" >&2
}

echo "FFmpeg: $ff9_name ($ff9)" >&2
# Runs are the outer loop: every case gets its first run before any gets a
# second, so a change in machine load spreads over the cases.
for ((r = 1; r <= runs; r++)); do
    for c in "${cases[@]}"; do
        in="$dir/$c"
        o="$runs_dir/$c/$r"
        timed "$c" ffmpeg-9 "$r" "$o/ffmpeg-9" - \
            bash -c 'reference_graph "$@"' _ "$ff9" "$in/call.webm" "$in/response.webm" "$repo/assets" "$o/ffmpeg-9"
        if ((ff5)); then
            timed "$c" ffmpeg-deb "$r" "$o/ffmpeg-deb" - \
                bash -c 'reference_graph "$@"' _ "$ff5_bin" "$in/call.webm" "$in/response.webm" "$repo/assets" "$o/ffmpeg-deb"
        fi
        # With --ab, podstitch and podstitch-b run back to back, the first of
        # the two swapped every other run (neither always finds the caches warm).
        if [[ -z $bin_b ]]; then
            pair=(podstitch)
        elif ((r % 2)); then
            pair=(podstitch podstitch-b)
        else
            pair=(podstitch-b podstitch)
        fi
        for t in "${pair[@]}"; do
            b=$bin
            [[ $t == podstitch ]] || b=$bin_b
            timed "$c" "$t" "$r" "$o/$t" "$o/$t/tmp" \
                "$b" stitch --call "$in/call.webm" --response "$in/response.webm" --assets "$repo/assets" \
                --out "$o/$t" --temp-dir "$o/$t/tmp"
        done
        if ((nv)); then
            timed "$c" podstitch-nv "$r" "$o/podstitch-nv" "$o/podstitch-nv/tmp" \
                "$bin" stitch --no-verify --call "$in/call.webm" --response "$in/response.webm" --assets "$repo/assets" \
                --out "$o/podstitch-nv" --temp-dir "$o/podstitch-nv/tmp"
        fi
        wav="$runs_dir/$c/wav"
        if [[ ! -d $wav ]]; then # the floor's inputs, untimed
            mkdir -p "$wav"
            for f in episode caller-segment response-segment; do
                "$ff9" -hide_banner -loglevel error -nostdin -y -i "$o/podstitch/$f.mp3" -c:a pcm_s16le "$wav/$f.wav"
            done
        fi
        timed "$c" lame-seq "$r" "$o/lame-seq" - bash -c 'lame_seq "$@"' _ "$wav" "$o/lame-seq"
        timed "$c" lame-par "$r" "$o/lame-par" - bash -c 'lame_par "$@"' _ "$wav" "$o/lame-par"
        timed "$c" lame-linked "$r" "$o/lame-linked" - bash -c 'linked_seq "$@"' _ "$wav" "$o/lame-linked"
    done
done
rm -rf "$runs_dir"/*/wav
fi # measuring

# --- Table -----------------------------------------------------------------------
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
echo
echo "podstitch $("$bin" --version 2>/dev/null | cut -d ' ' -f 2) ($(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?')) vs $ff9_name${ff5_name:+ and $ff5_name} vs $(lame --version | head -n 1 | cut -d '(' -f 1)"
echo "CPU: $cpu, nproc $(nproc), $(free -g | awk '/^Mem:/ { print $2 }') GiB; kernel $(uname -r)"
echo "mode: $( ((full)) && echo "--full, $runs runs, medians" || echo "quick (the 14.3-min case), $runs run$( ((runs > 1)) && echo "s, medians")")"
echo "$cg_line"
[[ -z ${b_name:-} ]] || echo "$b_name"
"$py" - "$raw" "$runs_dir" "${cases[@]}" <<'PY'
import json, statistics as st, sys, glob, os
raw, runs_dir, cases = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [l.rstrip('\n').split('\t') for l in open(raw)][1:]
nominal = {'m14': (2.5, 11.8), 'm5': (2.5, 5), 'm15': (2.5, 15), 'm60': (2.5, 60)}
def minutes(c):
    # The input lengths as podstitch decoded them (so inputs other than the
    # generated ones are divided by their own length), else the nominal ones.
    for f in sorted(glob.glob(f"{runs_dir}/{c}/*/podstitch*/stdout.txt")):
        lines = open(f).read().strip().splitlines()
        try:
            j = json.loads(lines[-1])
            return j['caller']['inputDurationS'] / 60, j['response']['inputDurationS'] / 60
        except (IndexError, KeyError, TypeError, ValueError):
            continue
    return nominal[c]
def med(c, t, k):
    # Column k may be empty (tmp_peak_kib of a command without a temp dir) or
    # missing (a raw.tsv from before the column existed).
    v = [float(r[k]) for r in rows if r[0] == c and r[1] == t and len(r) > k and r[k] != '']
    return st.median(v) if v else None
tools = [t for t in ('ffmpeg-9', 'ffmpeg-deb', 'podstitch', 'podstitch-b', 'podstitch-nv', 'lame-seq', 'lame-par', 'lame-linked') if any(r[1] == t for r in rows)]
loads = [float(r[6]) for r in rows]
print(f"load average (1 min) at the start of each timed command: min {min(loads):.2f}, median {st.median(loads):.2f}, max {max(loads):.2f}")
print()
print("| case (call + response) | command | wall s | CPU s | peak RSS MiB | peak temp MiB | temp MB per input min | CPU s per input min | FFmpeg-9 wall ÷ this wall | this CPU ÷ floor CPU |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
def ratio(x, y):
    return f"{x / y:.2f}" if x is not None and y else "–"
for c in cases:
    a, b = minutes(c)
    label = f"{round(a, 1):g} + {round(b, 1):g} min"
    fw, fc = med(c, 'ffmpeg-9', 3), med(c, 'lame-seq', 4)
    for t in tools:
        w, u, m, k = med(c, t, 3), med(c, t, 4), med(c, t, 5), med(c, t, 7)
        if w is None:
            continue
        temp = (f"{k / 1024:.1f}", f"{k * 1024 / 1e6 / (a + b):.2f}") if k is not None else ("–", "–")
        print(f"| {label} | {t} | {w:.2f} | {u:.2f} | {m / 1024:.0f} | {temp[0]} | {temp[1]} | {u / (a + b):.3f} | {ratio(fw, w)} | {ratio(u, fc)} |")
if 'podstitch-b' in tools:
    print()
    print("podstitch-b ÷ podstitch (medians; below 1: podstitch-b is cheaper):")
    print("| case | wall | CPU | peak RSS | peak temp |")
    print("|---|---:|---:|---:|---:|")
    for c in cases:
        print(f"| {c} | " + " | ".join(ratio(med(c, 'podstitch-b', k), med(c, 'podstitch', k)) for k in (3, 4, 5, 7)) + " |")
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
