#!/usr/bin/python3
"""Known answers for modeling/metrics: PSI, calibration table and confusion rates.

Run from this folder with Debian's python3-sklearn installed (scikit-learn 1.2.1, numpy 1.24.2):
    /usr/bin/python3 make_vectors.py > vectors.json
"""
import json, math
import numpy as np
from sklearn.metrics import confusion_matrix, precision_score, recall_score, f1_score, accuracy_score

FLOOR = 1e-4  # metrics.PSIFloor

def psi(e, a):
    e = np.maximum(np.asarray(e, float), 0); a = np.maximum(np.asarray(a, float), 0)
    pe = np.maximum(e / e.sum(), FLOOR); pa = np.maximum(a / a.sum(), FLOOR)
    return float(np.sum((pa - pe) * np.log(pa / pe)))

out = {"psi": [], "calibration": [], "confusion": []}
for e, a in [([100, 200, 300, 400], [110, 190, 320, 380]),
             ([50, 50, 0, 100], [40, 60, 10, 90]),          # empty expected bin: floored
             ([10.5, 20.25, 30, 39.25], [12, -3.5, 35, 41])]: # noisy counts, one negative (clamped)
    out["psi"].append({"expected": e, "actual": a, "psi": psi(e, a)})

rng = np.random.RandomState(7)
n = 200
p = (rng.permutation(n) + 1) / (n + 1.0)           # distinct probabilities
y = (rng.uniform(size=n) < p).astype(int)
for groups in (10, 7):
    order = np.argsort(p, kind="stable")
    rows = []
    for part in np.array_split(order, groups):
        rows.append({"count": int(len(part)), "positives": int(y[part].sum()),
                     "mean_predicted": float(p[part].mean()), "observed_rate": float(y[part].mean())})
    out["calibration"].append({"y": y.tolist(), "p": p.tolist(), "groups": groups, "table": rows})

for thr in (0.3, 0.5, 0.8):
    pred = (p >= thr).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    out["confusion"].append({"threshold": thr, "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
        "precision": precision_score(y, pred), "recall": recall_score(y, pred),
        "specificity": tn / (tn + fp), "f1": f1_score(y, pred), "accuracy": accuracy_score(y, pred)})
print(json.dumps(out, indent=1))
