#!/usr/bin/python3
"""Known answers for modeling/binning: WoE and IV per bin, and ChiMerge's chi-square statistic.

WoE/IV follow the formulas in the package comment (Siddiqi's ln(%good/%bad), pseudo-count alpha on
every cell of a non-empty bin, m = number of non-empty bins, negative cells clamped to 0), written out
here independently in plain Python. The chi-square statistic of two adjacent bins is scipy's
chi2_contingency(correction=False). Run from this folder with Debian's python3-scipy (1.10.1):
    /usr/bin/python3 make_vectors.py > vectors.json
"""
import json, math
from scipy.stats import chi2_contingency

def woe_iv(good, bad, mg, mb, alpha):
    cells = [(max(g, 0), max(b, 0)) for g, b in zip(good, bad)] + [(max(mg, 0), max(mb, 0))]
    G = sum(c[0] for c in cells); B = sum(c[1] for c in cells)
    m = sum(1 for c in cells if c[0] + c[1] > 0)
    woe, iv = [], []
    for g, b in cells:
        if g + b == 0:
            woe.append(0.0); iv.append(0.0); continue
        pg = (g + alpha) / (G + m * alpha); pb = (b + alpha) / (B + m * alpha)
        w = math.log(pg / pb); woe.append(w); iv.append((pg - pb) * w)
    return woe, iv, sum(iv)

cases = [
    # A textbook table without empty cells, alpha = 0 (no smoothing).
    dict(good=[80, 120, 200, 100], bad=[20, 15, 10, 5], mg=0, mb=0, alpha=0.0),
    # The same table, default smoothing 0.5, with a missing bin.
    dict(good=[80, 120, 200, 100], bad=[20, 15, 10, 5], mg=30, mb=12, alpha=0.5),
    # Noisy counts: non-integers, a negative cell (clamped), a bin with no bads.
    dict(good=[40.7, 61.2, -2.5, 90.1], bad=[12.3, 0.0, 3.4, 1.9], mg=0, mb=0, alpha=0.5),
]
out = {"woe": [], "chi2": []}
for c in cases:
    woe, iv, total = woe_iv(c["good"], c["bad"], c["mg"], c["mb"], c["alpha"])
    out["woe"].append(dict(c, woe=woe, iv=iv, total_iv=total))
for a, b in [((80, 20), (120, 15)), ((200, 10), (100, 5)), ((33, 7), (41, 2))]:
    stat = chi2_contingency([list(a), list(b)], correction=False)[0]
    out["chi2"].append({"a": list(a), "b": list(b), "chi2": float(stat)})
print(json.dumps(out, indent=1))
