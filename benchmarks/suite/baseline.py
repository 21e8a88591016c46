#!/usr/bin/python3
"""Plaintext baselines of insitu bench: scikit-learn logistic regression and xgboost, as
../shared/baselines/plaintext.py computes them, on the suite's flat CSV (id, label, features; empty
cells missing). Test rows: id % 5 == 0. Missing values take the column's median over all rows (as
plaintext.py does). Usage: baseline.py versions | baseline.py lr|xgb FILE. Prints one JSON object."""
import json, sys, time

def versions():
    out = {}
    try:
        import sklearn
        out["sklearn"] = sklearn.__version__
    except Exception as e:
        out["sklearn_error"] = str(e)
    try:
        import xgboost
        out["xgboost"] = xgboost.__version__
    except Exception as e:
        out["xgboost_error"] = str(e)
    try:
        import numpy
        out["numpy"] = numpy.__version__
    except Exception as e:
        out["numpy_error"] = str(e)
    print(json.dumps(out))

def ks(y, p):
    from sklearn.metrics import roc_curve
    import numpy as np
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))

def run(model, path):
    import numpy as np
    from sklearn.metrics import roc_auc_score
    data = np.genfromtxt(path, delimiter=",", skip_header=1, filling_values=np.nan)
    if data.ndim == 1:
        data = data.reshape(1, -1)
    ids, y, X = data[:, 0].astype(np.int64), data[:, 1], data[:, 2:]
    med = np.nanmedian(X, axis=0)
    idx = np.where(np.isnan(X))
    X[idx] = np.take(med, idx[1])
    test = ids % 5 == 0
    Xtr, Xte, ytr, yte = X[~test], X[test], y[~test], y[test]
    if model == "lr":
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
        sc = StandardScaler().fit(Xtr)
        Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)
        t = time.perf_counter()
        m = LogisticRegression(C=1.0, max_iter=1000).fit(Xtr, ytr)
    else:
        import xgboost as xgb
        t = time.perf_counter()
        m = xgb.XGBClassifier(n_estimators=200, max_depth=4, learning_rate=0.1, tree_method="hist", n_jobs=2).fit(Xtr, ytr)
    fit = time.perf_counter() - t
    p = m.predict_proba(Xte)[:, 1]
    print(json.dumps({"auc": float(roc_auc_score(yte, p)), "ks": ks(yte, p), "fit_s": fit,
                      "train": int(len(ytr)), "test": int(len(yte)), "features": int(X.shape[1])}))

if __name__ == "__main__":
    if sys.argv[1] == "versions":
        versions()
    else:
        run(sys.argv[1], sys.argv[2])
