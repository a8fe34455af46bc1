#!/usr/bin/env python3
"""Reads JSON lines {"yaml": TEXT, "expected": VALUE} and checks that PyYAML's safe loader (what
cloud-init uses: YAML 1.1, which retypes yes/no/on/off, 0x1F, 12:30:00... and treats NEL, LS and
PS as line breaks) reads TEXT as exactly VALUE, types included (a string stays a string)."""
import json
import sys

import yaml


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a.keys()) == list(b.keys()) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


failures = 0
cases = 0
with open(sys.argv[1], encoding="utf-8", newline="") as lines:
    for number, line in enumerate(lines):
        cases += 1
        case = json.loads(line)
        try:
            got = yaml.safe_load(case["yaml"])
        except yaml.YAMLError as e:
            got = f"<parse error: {e}>"
        if not same(got, case["expected"]):
            failures += 1
            if failures <= 5:
                print(f"case {number}: expected {case['expected']!r}\n  got {got!r}\n  from {case['yaml']!r}")
print(f"{cases} cases, {failures} failures")
sys.exit(1 if failures or cases == 0 else 0)
