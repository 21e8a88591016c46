#!/usr/bin/python3
"""Known answers for modeling/scorecard: WoE features, scikit-learn's logistic regression on them and
the Siddiqi points.

Bins are fixed (cut points below, upper-inclusive, NaN its own bin) so that binning.Manual reproduces
them; WoE uses the package formula ln(%good/%bad) with pseudo-count 0.5 on every cell of a non-empty
bin. The regression is LogisticRegression(C=1.0, solver="newton-cg", tol=1e-12) (L2 on the weights only, as logreg with lambda 1).
Points: factor = PDO/ln 2, offset = base_score - factor*ln(base_odds),
points_ij = -factor*(beta_j*WoE_ij + beta_0/k) + offset/k for k features; the score is their sum.
Run from this folder with Debian's python3-sklearn (1.2.1) and python3-numpy (1.24.2):
    /usr/bin/python3 make_vectors.py > vectors.json
"""
import json, math
import numpy as np
from sklearn.linear_model import LogisticRegression

rng = np.random.RandomState(5)
n = 400
a = np.round(rng.normal(50, 15, n))
b = rng.randint(0, 6, n).astype(float)
b[rng.uniform(size=n) < 0.1] = np.nan
z = -0.05 * (a - 50) + np.where(np.isnan(b), 0.8, 0.4 * (b - 2.5)) - 1.0
y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
features = {"a": (a, [35.0, 50.0, 65.0]), "b": (b, [1.0, 3.0])}
ALPHA = 0.5

def woe_table(x, edges):
    nb = len(edges) + 2
    idx = np.where(np.isnan(x), nb - 1, np.searchsorted(edges, np.nan_to_num(x), side="left"))
    g = np.array([np.sum((idx == i) & (y == 0)) for i in range(nb)], float)
    bd = np.array([np.sum((idx == i) & (y == 1)) for i in range(nb)], float)
    m = np.sum(g + bd > 0)
    w = np.zeros(nb)
    for i in range(nb):
        if g[i] + bd[i] > 0:
            w[i] = math.log(((g[i] + ALPHA) / (g.sum() + m * ALPHA)) / ((bd[i] + ALPHA) / (bd.sum() + m * ALPHA)))
    return idx, w

cols, woes = [], {}
for name, (x, edges) in features.items():
    idx, w = woe_table(x, edges)
    woes[name] = w.tolist()
    cols.append(w[idx])
W = np.column_stack(cols)
lr = LogisticRegression(C=1.0, solver="newton-cg", tol=1e-12, max_iter=10000).fit(W, y)
beta, b0 = lr.coef_[0], lr.intercept_[0]
PDO, BASE, ODDS = 20.0, 600.0, 50.0
factor = PDO / math.log(2); offset = BASE - factor * math.log(ODDS)
k = len(features)
points = {name: [-factor * (beta[j] * w + b0 / k) + offset / k for w in woes[name]] for j, name in enumerate(features)}
scores = offset - factor * (W @ beta + b0)
print(json.dumps({
    "a": [float(v) for v in a], "b": [None if np.isnan(v) else float(v) for v in b], "y": y.tolist(),
    "edges": {k_: e for k_, (_, e) in features.items()}, "woe": woes,
    "coef": beta.tolist(), "intercept": float(b0), "pdo": PDO, "base_score": BASE, "base_odds": ODDS,
    "factor": factor, "offset": offset, "points": points, "scores": scores.tolist()}))
