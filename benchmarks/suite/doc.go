// Package suite is insitu's benchmark suite for researchers (`insitu bench`): it runs workloads on
// the public credit data sets or on synthetic data with fixed seeds and the id % 5 == 0 test split,
// and reports for each case wall time, CPU time and peak memory, and for models AUC, KS and the
// privacy cost, next to the plaintext baselines of insitu's modeling packages and of scikit-learn
// and xgboost computed in the same run.
//
// Call Run with a Config, then Report.Write for the JSON and Markdown files; Compare prints the
// ratios of two reports. A program that runs the suite must also run cases in child processes:
// Config.Child returns the command, and that command calls RunCase (the insitu binary does it with
// the hidden "insitu bench case"; a test's TestMain with an environment variable).
//
// # Workloads
//
//   - he-lr: logistic regression on CKKS-encrypted data (plugins/helr) — through the enclave's job
//     path when this process can start the strict sandbox (root on Linux) and a static plugin
//     binary is at hand: on synthetic data a bank's job (ingest, the enterprises' authorizations,
//     sealed labels of the training borrowers, signed manifest, approval, strict sandbox, output
//     gate, the bank's sealed result); on a public data set a researcher's job on the data ingested
//     as a dataset of class public, whose custom fields the manifest names and whose outcome
//     column labels the training rows only (label_column; no authorization applies). Otherwise
//     (or with --he-path in-process) in-process with the enclave's packing (he.JobKeys.Batches)
//     and refresh service, and the row says why.
//     Every feature is transformed by helr.FeatureSpec (median imputed, winsorised at the training
//     1 % and 99 % quantiles, standardised, clipped to [−4, 4]). Next to it: modeling/logreg's exact
//     optimum of the same objective on the same transformed features, and scikit-learn (on
//     standardised features, as the reference figures).
//   - scorecard: modeling/scorecard (monotone-WoE binning, LR on WoE) without noise; in aggregate
//     mode, plugins/scorecard's model fitted through the enclave's aggregate query service
//     (enclave/aggregate, in-process, a ledger of its own) at ε ∈ {1, 2, 4, 8} (a single ε = 8 on
//     synthetic data and with --quick), with the ε spent; scikit-learn LR and xgboost.
//   - gbdt: modeling/gbdt with xgboost's baseline settings without noise; plugins/gbdt's model
//     through the aggregate service at the same ε; xgboost.
//   - psi: ECDH-PSI with both parties in one process, next to its floor (the group operations alone).
//   - ingest: connectors → encrypted dataset on the original files.
//   - sandbox: the reference plugin run by enclave/runner in the strict sandbox.
//   - scoring: enclave/scoring serving a model released through the HE job path (synthetic data,
//     root): single scores and batches of 100 in-process, with durable audit.
//
// More rows of an existing workload slot in with RegisterCases (the aggregate rows do); new
// workloads with Register.
//
// # Measurement
//
// Each case runs in a child process of its own; the parent measures it with wait4's rusage: wall
// time, CPU time (user + system of the child and every descendant it waited for: a sandboxed
// plugin, the Python interpreter) and peak memory, the largest resident-set high-water mark among
// those processes (getrusage's maxrss: a maximum, not a sum — the HE row's extra plugin_peak_mb gives
// the plugin's own peak). Cases whose model trains in a process of its own report fit_s, the
// training alone. Config.InProcess runs cases in the parent instead, where peaks mix.
//
// # JSON report (schema "insitu-bench/v1")
//
//	{
//	  "schema": "insitu-bench/v1",
//	  "started", "finished": RFC 3339 times; "command": the command line,
//	  "config": {"suite": [...], "data": folder or "synthetic", "quick", "enterprises", "he_path",
//	             "he_params", "in_process"},
//	  "seeds": {"synthetic": n, "psi": n, "gbdt": 0, "python": 0},   // 0: the method draws nothing
//	  "split": how train and test rows are chosen,
//	  "machine": {"os", "arch", "kernel", "cpu_model", "cores", "gomaxprocs", "memory_mb", "root",
//	              "load_average_start": [1, 5, 15 min], "load_average_end": [...]},
//	  "build": {"go", "module", "commit", "modified", "deps": {module path: version}},
//	  "python": {"path", "available", "sklearn", "xgboost", "numpy", "note"},
//	  "data": [{"name", "source", "original", "rows", "train", "test", "features", "positives", ...}],
//	  "rows": [Row, ...]
//	}
//
// A row (type Row) has "id" ("workload/data/method"), "workload", "data", "method", "kind" (model
// or system), "path" (how it ran), "isolation", "status" (ok, skipped, failed) and "reason"; the
// figures "train", "test", "features", "auc", "ks", "epsilon", "delta", "refreshes", "decrypted",
// "fit_s", "wall_s", "cpu_s", "peak_rss_mb" — null when empty, and then "notes" holds the reason
// under the figure's name; "extra" holds the workload's own figures, units in their names.
package suite
