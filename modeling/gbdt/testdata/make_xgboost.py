#!/usr/bin/python3
"""Known answers for modeling/gbdt: a small fixture and xgboost's margins on it.

Every feature has at most 12 distinct values, so xgboost's hist method (max_bin 256) gives each value
its own bin, as gbdt.QuantileCuts does, and both search the same splits. Feature x2 has missing values
(xgboost learns their direction as gbdt does). Run from this folder with Debian's python3-xgboost
(1.7.4) and python3-numpy (1.24.2):
    /usr/bin/python3 make_xgboost.py > xgboost.json
"""
import json
import numpy as np
import xgboost as xgb

rng = np.random.RandomState(11)
n = 300
x0 = rng.randint(0, 10, n).astype(float)
x1 = rng.randint(0, 5, n).astype(float) * 1.5
x2 = rng.randint(0, 12, n).astype(float) - 4
x2[rng.uniform(size=n) < 0.15] = np.nan
z = 0.5 * (x0 - 4.5) - 0.8 * (x1 > 3) + np.where(np.isnan(x2), 1.0, 0.2 * x2)
y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
X = np.column_stack([x0, x1, x2])

out = {"x": [[None if np.isnan(v) else float(v) for v in row] for row in X], "y": y.tolist(), "runs": []}
for params in [dict(n_estimators=5, max_depth=3, learning_rate=0.3, reg_lambda=1.0, min_child_weight=1.0, gamma=0.0),
               dict(n_estimators=20, max_depth=2, learning_rate=0.1, reg_lambda=5.0, min_child_weight=3.0, gamma=0.5)]:
    m = xgb.XGBClassifier(tree_method="hist", max_bin=256, base_score=0.5, n_jobs=1, **params).fit(X, y)
    margin = m.predict(X, output_margin=True)
    out["runs"].append({"params": params, "margin": [float(v) for v in margin]})
print(json.dumps(out))
