// Package modeling holds insitu's pure modeling algorithms: no I/O, no logging, no dependency on the
// enclave, the command line or the connectors. Every package under it works on in-memory slices and
// gonum matrices, so the enclave, the reference plugins and a bank's own plugin can all call it.
//
// What lives where:
//
//   - modeling/features: feature transforms driven by a Spec (clip, impute, scale, one-hot,
//     date → age). Call features.Fit on training columns, then (*Fitted).Transform on any columns of
//     the same layout. A Fitted pipeline is JSON-serialisable so a released model carries it, and it
//     reports the range of each output (Bounds, RequireBounded) since encrypted training needs
//     bounded inputs.
//   - modeling/logreg: L2-regularised logistic regression fitted by Newton/IRLS, the plaintext
//     reference every other model is measured against. Call logreg.Fit with a Problem; use
//     (Problem).Check to test how near given weights are to the optimum of the declared objective.
//   - modeling/metrics: ROC AUC, KS, Gini, log-loss, confusion counts and rates, population
//     stability index and calibration tables. Call metrics.Evaluate for AUC, KS and Gini in one pass.
//   - modeling/binning: equal-frequency, ChiMerge, monotone-WoE and manual binning with WoE and IV,
//     from exact or noisy histograms of goods and bads (binning.Fit) or raw values (FitValues).
//   - modeling/scorecard: a points table (PDO, base score at base odds) from binnings and logistic
//     regression on WoE, with reason codes. Call scorecard.Fit, or scorecard.New with coefficients
//     fitted elsewhere.
//   - modeling/gbdt: histogram gradient-boosted trees whose split search asks a gbdt.Provider for
//     per-bin sums of gradients and Hessians, so the same builder trains on plaintext (gbdt.Exact) or
//     on noisy aggregates. Call gbdt.Train.
//
// Homomorphically encrypted logistic regression and differential privacy mechanisms are further
// packages under modeling/ built on the same conventions: errors are
// sentinel ErrX values wrapped in structured *Error types (use errors.Is and errors.As), and shape
// mismatches between arguments are programmer errors that panic.
package modeling
