#!/usr/bin/env python3
"""A second implementation of the plan draw, written from docs/PLAN.md alone.

Reads the draw's input (docs/PLAN.md section 1) as JSON from the file named
on the command line (or standard input) and prints the output of section 6
as JSON, or {"error": KIND} when the draw refuses; given a JSON array of
inputs, prints the array of their outputs. Deliberately plain:
linear scans instead of a Fenwick tree, Python's own integers and dates.
"""

import datetime
import hashlib
import json
import sys

TWO64 = 1 << 64


class Stream:
    """Section 2: SHA-256 in counter mode, one counter per stream name."""

    def __init__(self, seed, name):
        self.seed = seed.encode("utf-8")
        self.name = name.encode("ascii")
        self.i = 0

    def next(self):
        msg = b"yisaozhi-plan-v1/" + self.name + b"/" + str(self.i).encode("ascii") + b"/" + self.seed
        self.i += 1
        return int.from_bytes(hashlib.sha256(msg).digest()[:8], "big")

    def below(self, n):
        limit = TWO64 - (TWO64 % n)
        while True:
            x = self.next()
            if x < limit:
                return x % n


def covers(code, region):
    return region.startswith(code.rstrip("0"))


def draw(inp):
    if inp["version"] != 1:
        return {"error": "version"}
    size, team_size = inp["size"], inp["team_size"]
    if not 1 <= size <= 5000:
        return {"error": "size"}
    if not 1 <= team_size <= 10:
        return {"error": "team_size"}
    weights = inp["weights"]
    if all(weights[g] == 0 for g in ("red", "yellow", "green")):
        return {"error": "weights"}
    merchants = sorted(inp["merchants"], key=lambda m: m["id"].encode("utf-8"))
    inspectors = sorted(inp["inspectors"], key=lambda p: p["id"].encode("utf-8"))
    if len({m["id"] for m in merchants}) != len(merchants):
        return {"error": "duplicate_merchant"}
    if len({p["id"] for p in inspectors}) != len(inspectors):
        return {"error": "duplicate_inspector"}
    if not merchants:
        return {"error": "no_candidates"}

    # Section 3.
    as_of = datetime.date.fromisoformat(inp["as_of"])
    start = as_of - datetime.timedelta(days=365)
    doubled = set()
    for m in merchants:
        if any(start < datetime.date.fromisoformat(d) <= as_of for d in m["failed_sampling"]):
            doubled.update(m["categories"])
    is_doubled = [any(c in doubled for c in m["categories"]) for m in merchants]
    weight = [weights[m["grade"]] * (2 if d else 1) for m, d in zip(merchants, is_doubled)]
    positive = sum(1 for w in weight if w > 0)
    if positive == 0:
        return {"error": "no_candidates"}
    total = sum(weight)

    # Section 4.
    n = min(size, positive)
    current = list(weight)
    remaining = total
    stream = Stream(inp["seed"], "merchants")
    picked = []
    for _ in range(n):
        r = stream.below(remaining)
        running = 0
        for i, w in enumerate(current):
            running += w
            if running > r:
                break
        picked.append(i)
        remaining -= current[i]
        current[i] = 0

    # Section 5.
    pool = [p for p in inspectors if any(covers(p["region"], merchants[i]["region"]) for i in picked)]
    load_limit = 0 if not pool else -(-(team_size * n) // len(pool)) + 1
    load = {p["id"]: 0 for p in pool}
    stream = Stream(inp["seed"], "teams")
    entries = []
    for i in picked:
        m = merchants[i]

        def allowed(p):
            return covers(p["region"], m["region"]) and p["id"] != m["assistant"]

        team = []
        for _ in range(team_size):
            eligible = [p for p in pool if allowed(p) and p["id"] not in team and load[p["id"]] < load_limit]
            if not eligible:
                break
            team.append(eligible[stream.below(len(eligible))]["id"])
        if len(team) == team_size:
            for t in team:
                load[t] += 1
            entry_team, reason = team, None
        elif sum(1 for p in pool if allowed(p)) < team_size:
            entry_team, reason = None, "too_few_inspectors"
        else:
            entry_team, reason = None, "load_limit"
        entries.append({
            "merchant_id": m["id"],
            "weight": weight[i],
            "doubled": is_doubled[i],
            "team": entry_team,
            "no_team": reason,
        })

    return {
        "doubled_categories": sorted(doubled, key=lambda c: c.encode("utf-8")),
        "candidates": positive,
        "total_weight": total,
        "pool": len(pool),
        "load_limit": load_limit,
        "entries": entries,
    }


def main():
    if len(sys.argv) > 1:
        with open(sys.argv[1], encoding="utf-8") as f:
            inp = json.load(f)
    else:
        inp = json.load(sys.stdin)
    out = [draw(i) for i in inp] if isinstance(inp, list) else draw(inp)
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
