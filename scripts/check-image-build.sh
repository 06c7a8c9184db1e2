#!/usr/bin/env bash
# Checks the Dockerfile's build steps outside Docker (no engine runs here):
# builds the binary with the same command, checks it needs no glibc newer
# than the sandbox image's (Ubuntu 22.04: 2.35) and no shared library beyond
# libc, libm and libgcc_s, then runs it under the worker's name exactly as the
# image would (symlink in a scratch /usr/local/bin, assets in a scratch
# /opt/call-kent-audio/assets) to see the job mode start and check its
# configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
max_glibc=2.35

cargo build --release --locked --bin podstitch
bin=target/release/podstitch
"$bin" --version

need=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
if [[ $(printf '%s\n%s\n' "$need" "$max_glibc" | sort -V | tail -1) != "$max_glibc" ]]; then
    echo "binary needs glibc $need, the sandbox image has $max_glibc" >&2
    exit 1
fi
echo "glibc: needs $need (image has $max_glibc)"
libs=$(ldd "$bin" | awk '{print $1}' | grep -vE '^(linux-vdso|/lib64/ld-linux|libc\.so|libm\.so|libgcc_s\.so)' || true)
if [[ -n $libs ]]; then
    echo "unexpected shared libraries: $libs" >&2
    exit 1
fi
echo "shared libraries: libc, libm, libgcc_s only"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/opt/call-kent-audio/assets"
cp "$bin" "$root/usr/local/bin/podstitch"
ln -s podstitch "$root/usr/local/bin/call-kent-audio-cli"
cp assets/intro.mp3 assets/interstitial.mp3 assets/outro.mp3 "$root/opt/call-kent-audio/assets/"

# No arguments, no environment: the first required variable is reported.
set +e
msg=$(env -i "$root/usr/local/bin/call-kent-audio-cli" 2>&1 >/dev/null); rc=$?
set -e
[[ $rc == 1 && $msg == "Missing required env var: CALL_KENT_AUDIO_DRAFT_ID" ]] || {
    echo "unexpected: rc=$rc: $msg" >&2; exit 1; }
# All variables but no assets in the default place: the missing file is named.
set +e
msg=$(env -i CALL_KENT_AUDIO_DRAFT_ID=d CALL_KENT_AUDIO_ATTEMPT=1 \
    CALL_AUDIO_URL=http://127.0.0.1:9/a RESPONSE_AUDIO_URL=http://127.0.0.1:9/b \
    EPISODE_UPLOAD_URL=http://127.0.0.1:9/c CALLER_SEGMENT_UPLOAD_URL=http://127.0.0.1:9/d \
    RESPONSE_SEGMENT_UPLOAD_URL=http://127.0.0.1:9/e \
    CALL_KENT_AUDIO_ASSETS_DIR="$root/opt/call-kent-audio/none" \
    "$root/usr/local/bin/call-kent-audio-cli" 2>&1 >/dev/null); rc=$?
set -e
[[ $rc == 1 && $msg == "Missing required file: $root/opt/call-kent-audio/none/intro.mp3" ]] || {
    echo "unexpected: rc=$rc: $msg" >&2; exit 1; }
echo "job mode under the worker's name: configuration checks as the contract says"
test -s /etc/ssl/certs/ca-certificates.crt && echo "CA certificates present on this machine"
echo "image build steps: ok"
