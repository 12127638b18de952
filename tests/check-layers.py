#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""agent/ is layered by folder (docs/architecture.md): a file includes headers of its own
folder and of the folders below it, never of one above. Every include of an agent header
names its folder, so this is what a grep sees too."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "agent"
ORDER = ["basic", "config", "system", "git", "sign", "oci", "bundle", "engine"]


def main():
    bad, count = [], 0
    folders = {p.name for p in ROOT.iterdir() if p.is_dir()}
    if folders != set(ORDER):
        bad.append(f"agent/ has the folders {sorted(folders)}, the layers are {ORDER}")
    for f in sorted(ROOT.rglob("*.[ch]")):
        rel = f.relative_to(ROOT)
        here = rel.parts[0] if len(rel.parts) > 1 else None  # agent/main.c: above every layer
        for n, line in enumerate(f.read_text().splitlines(), 1):
            m = re.match(r'#include "([^"]+)"', line)
            if not m:
                continue
            inc = m.group(1)
            if "/" not in inc:
                if (ROOT / inc).exists() or any((ROOT / d / inc).exists() for d in ORDER):
                    bad.append(f"agent/{rel}:{n}: #include \"{inc}\" does not name its folder")
                continue
            count += 1
            there = inc.split("/")[0]
            if there not in ORDER or not (ROOT / inc).exists():
                bad.append(f"agent/{rel}:{n}: #include \"{inc}\": no such agent header")
            elif here and ORDER.index(there) > ORDER.index(here):
                bad.append(f"agent/{rel}:{n}: {here}/ includes {inc}, a higher layer")
    for b in bad:
        print(b)
    print(f"{count} includes of agent headers checked; {len(bad)} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
