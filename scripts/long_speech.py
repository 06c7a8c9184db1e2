#!/usr/bin/env python3
"""Assemble a long speech master from short clips (used by make-long-inputs.sh).

    long_speech.py --seconds S --seed N --levels -6,0,6 --out OUT.f32 CLIP.f32...

Each CLIP is raw 32-bit float mono 48 kHz speech with its edge silence trimmed
and a common peak level. The clips are drawn from shuffled bags (every clip is
used once before any repeats, never the same clip twice in a row) and joined
with pauses of 0.3, 0.8, 1.5, 3 or 6 s of digital silence. The recording is
split into passages of 15-45 s, each played at one of --levels (dB, applied
with `sox vol`), so there are louder and quieter stretches. It starts with
--lead seconds of silence and is exactly --seconds long. The noise floor is
mixed in afterwards by the caller. The plan (clip, level, pause) is printed to
stderr; the output depends only on the arguments.
"""
import argparse
import os
import random
import subprocess
import sys

RATE = 48000
PAUSES = [0.3, 0.8, 1.5, 3.0, 6.0]
PAUSE_WEIGHTS = [0.34, 0.30, 0.18, 0.12, 0.06]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=float, required=True)
    ap.add_argument('--seed', type=int, required=True)
    ap.add_argument('--levels', default='-6,0,6')
    ap.add_argument('--passage', default='15,45', help='min,max passage length, s')
    ap.add_argument('--lead', type=float, default=1.0)
    ap.add_argument('--out', required=True)
    ap.add_argument('clips', nargs='+')
    a = ap.parse_args()

    rng = random.Random(a.seed)
    levels = [float(x) for x in a.levels.split(',')]
    pmin, pmax = (float(x) for x in a.passage.split(','))
    clips = sorted(a.clips)
    data = {c: open(c, 'rb').read() for c in clips}
    total = int(round(a.seconds * RATE))
    bag, last = [], None

    def next_clip():
        nonlocal bag, last
        if not bag:
            bag = clips[:]
            rng.shuffle(bag)
            if bag[-1] == last and len(bag) > 1:
                bag[0], bag[-1] = bag[-1], bag[0]
        last = bag.pop()
        return last

    with open(a.out, 'wb') as out:
        pos = int(round(a.lead * RATE))
        out.write(bytes(4 * pos))
        level = None
        stats = {'utterances': 0, 'passages': 0, 'pauses': {p: 0 for p in PAUSES}}
        done = False
        while not done:
            level = rng.choice([l for l in levels if l != level] or levels)
            plen = int(rng.uniform(pmin, pmax) * RATE)
            chunk, n = bytearray(), 0
            while n < plen:
                c = next_clip()
                d = data[c]
                frames = len(d) // 4
                pause = rng.choices(PAUSES, PAUSE_WEIGHTS)[0]
                pf = int(round(pause * RATE))
                if pos + n + frames + int(0.5 * RATE) > total:
                    done = True
                    break
                chunk += d
                n += frames
                stats['utterances'] += 1
                print(f'{(pos + n - frames) / RATE:9.2f}s {level:+.0f} dB {os.path.basename(c)}'
                      f' then {pause} s', file=sys.stderr)
                pf = min(pf, total - pos - n)
                chunk += bytes(4 * pf)
                n += pf
                stats['pauses'][pause] += 1
            if chunk:
                stats['passages'] += 1
                r = subprocess.run(
                    ['sox', '-R', '-t', 'f32', '-r', str(RATE), '-c', '1', '-',
                     '-t', 'f32', '-', 'vol', f'{level}dB'],
                    input=bytes(chunk), stdout=subprocess.PIPE, check=True)
                assert len(r.stdout) == len(chunk)
                out.write(r.stdout)
                pos += n
        out.write(bytes(4 * (total - pos)))
    print(f'{a.out}: {total / RATE:.2f} s, {stats}', file=sys.stderr)


if __name__ == '__main__':
    main()
