#!/usr/bin/env python3
"""Rewrite an FFmpeg live WebM into the layout Chrome's MediaRecorder writes.

    chrome_webm.py IN.webm OUT.webm

IN must come from FFmpeg's webm muxer with `-live 1` written to a pipe (the
Segment size is then unknown, the Clusters are sized). OUT keeps the EBML
header, a Segment of unknown size, Info (no Duration), Tracks and the
Clusters, each of which gets the 8-byte unknown-size marker
01 FF FF FF FF FF FF FF; SeekHead, Void, Cues and Tags are dropped.
Shared by fixtures/make-fixtures.sh and scripts/make-long-inputs.sh.
"""
import sys

UNKNOWN = b'\x01\xff\xff\xff\xff\xff\xff\xff'


def vint(d, i):
    """EBML variable-length integer at d[i]: (value, length, all_ones)."""
    b = d[i]
    n = 1
    while n <= 8 and not b & (0x80 >> (n - 1)):
        n += 1
    v = b & (0xFF >> n)
    for k in range(1, n):
        v = (v << 8) | d[i + k]
    return v, n, v == (1 << (7 * n)) - 1


def element_id(d, i):
    _, n, _ = vint(d, i)
    return d[i:i + n], n


def rewrite(src):
    out = bytearray()
    # EBML header.
    hid, hn = element_id(src, 0)
    assert hid == b'\x1a\x45\xdf\xa3'
    size, sn, _ = vint(src, hn)
    pos = hn + sn + size
    out += src[:pos]
    # Segment header.
    sid, sn_id = element_id(src, pos)
    assert sid == b'\x18\x53\x80\x67'
    _, sn, unknown = vint(src, pos + sn_id)
    assert unknown, 'ffmpeg wrote a sized Segment'
    out += sid + UNKNOWN
    pos += sn_id + sn
    keep = {b'\x15\x49\xa9\x66': 'Info', b'\x16\x54\xae\x6b': 'Tracks'}
    clusters = 0
    while pos < len(src):
        eid, idn = element_id(src, pos)
        size, szn, unknown = vint(src, pos + idn)
        assert not unknown
        body = src[pos + idn + szn:pos + idn + szn + size]
        if eid in keep:
            out += src[pos:pos + idn + szn + size]
        elif eid == b'\x1f\x43\xb6\x75':  # Cluster
            out += eid + UNKNOWN + body
            clusters += 1
        pos += idn + szn + size
    assert clusters >= 2
    return out, clusters


def main():
    src = open(sys.argv[1], 'rb').read()
    out, _ = rewrite(src)
    open(sys.argv[2], 'wb').write(out)


if __name__ == '__main__':
    main()
