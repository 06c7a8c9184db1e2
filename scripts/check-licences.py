#!/usr/bin/env python3
"""Lists the licence of every crate podstitch is built with (Linux x86-64,
normal, build and dev dependencies) and fails on one outside the allow-list
and exceptions of deny.toml. The fallback for `cargo deny check licenses`
where cargo-deny is not installed.

    scripts/check-licences.py          # check; print a summary
    scripts/check-licences.py --list   # also print every crate and licence
"""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

root = Path(__file__).resolve().parent.parent
deny = tomllib.loads((root / "deny.toml").read_text())
allowed = set(deny["licenses"]["allow"])
exceptions = {e["crate"]: set(e["allow"]) for e in deny["licenses"].get("exceptions", [])}

meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--locked",
     "--filter-platform", "x86_64-unknown-linux-gnu"],
    cwd=root, check=True, capture_output=True, text=True).stdout)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}

# Every crate reachable from podstitch.
seen, stack = set(), [meta["resolve"]["root"]]
while stack:
    pid = stack.pop()
    if pid in seen:
        continue
    seen.add(pid)
    stack.extend(d["pkg"] for d in nodes[pid]["deps"])


def tokens(expr):
    return re.findall(r"\(|\)|[A-Za-z0-9.+\-]+", expr.replace("/", " OR "))


def satisfied(expr, ok):
    """Evaluates an SPDX expression: OR, AND, WITH, parentheses."""
    toks = tokens(expr)
    pos = 0

    def atom():
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t == "(":
            v = disj()
            pos += 1  # ")"
            return v
        if pos < len(toks) and toks[pos] == "WITH":
            t = f"{t} WITH {toks[pos + 1]}"
            pos += 2
        return t in ok

    def conj():
        nonlocal pos
        v = atom()
        while pos < len(toks) and toks[pos] == "AND":
            pos += 1
            v = atom() and v
        return v

    def disj():
        nonlocal pos
        v = conj()
        while pos < len(toks) and toks[pos] == "OR":
            pos += 1
            v = conj() or v
        return v

    return disj()


bad, rows = [], []
for pid in sorted(seen, key=lambda i: packages[i]["name"]):
    p = packages[pid]
    if p["name"] == "podstitch":
        continue
    lic = p.get("license")
    ok = allowed | exceptions.get(p["name"], set())
    rows.append((p["name"], p["version"], lic or "(none)"))
    if not lic or not satisfied(lic, ok):
        bad.append(f"{p['name']} {p['version']}: {lic or 'no licence field'}")

if "--list" in sys.argv:
    for name, version, lic in rows:
        print(f"{name} {version}: {lic}")
print(f"licences: {len(rows)} crates checked against deny.toml")
if bad:
    print("not allowed:\n  " + "\n  ".join(bad), file=sys.stderr)
    sys.exit(1)
