// Package aggregate is the enclave's aggregate query service: the only way a plugin in aggregate
// mode learns about a job's cohort. It answers histograms, sufficient statistics (XᵀX, Xᵀy),
// logistic-regression gradients and Hessians, and per-bin gradient sums of a tree ensemble, each
// clipped to a documented sensitivity, noised with an exact discrete Gaussian drawn from
// crypto/rand, thresholded on noisy counts, and charged to a privacy ledger kept in the state
// database across jobs and restarts.
//
// Open the state database with Migrations, call NewLedger once, then for each aggregate job
// Ledger.CheckFits (a job whose ε does not fit in what remains of its bank's budget does not start)
// and NewService with the job's prepared training cohort; hand the *Service to the runner
// (runner.AggregateInput), which offers it to the plugin as sdk.TrainInput.Aggregate. After the run,
// Service.Record gives the gate the edges answered and the ε spent, and Ledger.RecordJob audits the
// job's spend. Stewards use Ledger.SetBudget, Ledger.SetMinCount and Ledger.Accounts.
//
// # Mechanism
//
// Every answer is a vector of integers (counts, and sums of values on a fixed-point grid) plus
// discrete Gaussian noise of variance σ² = Δ²/(2ρ) per part, where Δ is the part's L2 sensitivity
// under adding or removing one subject, and ρ the part's share of the query's budget; this is ρ-zCDP
// (Canonne, Kamath and Steinke 2020, Theorem 14). σ² is rounded up to a multiple of 2^−20, which only
// adds noise. The sampler (Sampler) is their exact rejection sampler from the discrete Laplace,
// with integer and rational arithmetic only.
//
// Fixed-point grid: a value bounded by B is summed as round(x·2^s), with s such that B·2^s lies in
// (2^15, 2^16]; the answer is the noisy integer times 2^−s, exact in float64. Rounding moves a row's
// value by at most 2^−17·B, so the sums of n rows are within n·2^−17·B of the exact sums (in
// practice, √n times less), far below the noise for any budget a job may hold; the sensitivity is
// computed on the rounded integers, so the guarantee is exact. g = p − y ∈ [−1, 1] uses s = 16 and
// h = p(1 − p) ∈ [0, ¼] uses s = 18. For XᵀX and the GLM answers the whole row vector is rounded
// and then shrunk until its integer norm is within the clipping bound.
//
// Thresholding: a cell whose noisy count is below k (Ledger.MinCount, default 10) is returned
// suppressed, and its sums with it; this is post-processing of the noisy count and costs nothing.
//
// # Accounting
//
// Spends are in ρ and add up (zCDP composition). A job may spend sdk.EpsilonToRho(ε, δ) for its
// manifest's ε; a bank may spend sdk.EpsilonToRho(E, δ) on a dataset across all its jobs, where E is
// the steward's budget for the pair (DefaultTotalEpsilon) and δ = DefaultDelta. sdk.RhoToEpsilon is
// the conversion: the tighter of ρ + 2√(ρ ln(1/δ)) and Canonne–Kamath–Steinke's Corollary 13.
// Ledger.Spend checks both budgets and records the spend in one transaction that is on disk before
// the answer is computed, so no answer ever leaves unrecorded; a query past either budget is refused
// with a *BudgetError showing what was spent and what remains.
//
// # What the answers depend on
//
// The bounds that make sensitivities finite come from the manifest's transforms (clip, scale); a
// transform whose parameters are fitted on the cohort (a mean for imputation, a standard deviation
// for scaling) is itself a statistic of the cohort that the DP guarantee does not cover. Bin edges
// come from the plugin and are recorded (Service.Record) so that the gate checks a released model
// splits only at them.
package aggregate
