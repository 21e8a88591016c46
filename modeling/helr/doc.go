// Package helr is the plaintext mirror of insitu's logistic regression on CKKS-encrypted data
// (plugins/helr): the same polynomial sigmoid, optimiser, schedule, regularisation and scaling,
// computed step for step in float64. It is the reference an encrypted run is tested against; the
// exact optimum of the same objective comes from modeling/logreg.
//
// Call DefaultConfig, adjust it (a job's hyperparameters decode into Config), then Fit with the
// features column by column and the labels. Step runs one iteration on a State, for comparing a single
// encrypted iteration.
//
// # Objective
//
// For n rows x_i ∈ R^d with labels y_i ∈ {0, 1}, Fit minimises
//
//	F(w, b) = (1/n)·Σ_i [log(1 + exp(u_i)) − y_i·u_i] + (l2/2)·‖w‖²,   u_i = w·x_i + b,
//
// the mean log-loss plus an L2 penalty that leaves the intercept b free. It has the minimiser of
// modeling/logreg's objective with λ = n·l2 (that one sums the log-loss): Config.Lambda gives it, so
// logreg.Problem{X, Y, Lambda: cfg.Lambda(n)}.Check measures how near a result is to the optimum.
//
// # Algorithm
//
// Nesterov's accelerated gradient with a fixed step α (learning_rate) and the usual momentum schedule
// λ_0 = 1, λ_{t+1} = (1 + √(1 + 4λ_t²))/2, μ_t = (λ_t − 1)/λ_{t+1} (so μ_0 = 0), starting at zero:
//
//	w_0 = v_0 = 0 (intercept included)
//	e_i      = (α/n)·p(u_i) − (α/n)·y_i        u_i = v_t·x_i + v_{t,0};  p: the polynomial sigmoid
//	g_j      = Σ_i e_i·x_ij,   g_0 = Σ_i e_i
//	w_{t+1}  = (1 − α·l2)·v_t − g   (the intercept: v_{t,0} − g_0)
//	v_{t+1}  = (1 + μ_t)·w_{t+1} − μ_t·w_t
//
// and returns w_T after T iterations. That is exactly a gradient step of F at v_t with the sigmoid
// replaced by p, with the constants folded where the encrypted version folds them (α/n into the
// polynomial's coefficients and the labels; 1 − α·l2 and the momentum as scalar products).
// Few-iteration first-order methods need well-scaled features: the default step suits features
// standardised to unit variance and then clipped (e.g. to [−4, 4]), as the enclave's HE transforms
// produce; features min-max scaled to [−1, 1] have a smaller variance and want a larger step.
//
// # The sigmoid and its interval
//
// p is the least-squares polynomial approximation of σ(u) = 1/(1 + e^−u) on [−R, R] (R is
// sigmoid_range) with respect to the uniform measure, of degree 3, 5 or 7: p(u) = 1/2 + Σ_k c_k·u^k
// over odd k (σ − 1/2 is odd, so the even coefficients vanish). It is accurate only for |u| ≤ R, so
// the interval must cover the margins u_i the iterates produce. They are bounded by the public
// feature bounds [lo_j, hi_j] (metadata insitu.he.bounds) and the size of the weights:
//
//	|u_i| ≤ |b| + Σ_j |w_j|·B_j ≤ |b| + ‖w‖₂·‖B‖₂,   B_j = max(|lo_j|, |hi_j|)   (Cauchy–Schwarz),
//
// and at the optimum (l2/2)·‖w*‖² ≤ F(w*, b*) ≤ F(0, logit ȳ) = H(ȳ) ≤ log 2, so ‖w*‖₂ ≤ √(2·log 2/l2).
// MarginBound returns |b| + √(2·log 2/l2)·‖B‖₂ for a given intercept bound; when it is at most R the
// interval provably covers the optimum's margins. For credit data that bound is loose (23 features
// clipped to ±4 with l2 = 10⁻³ give ≈ 720) because it assumes every feature at its extreme with
// weights aligned to it; the margins of real rows are far smaller (the exact optimum on the public
// Taiwan data, so transformed, has max |u_i| = 7.9). The default R = 8 is chosen from that
// measured margin and the doc of Config says so; raise sigmoid_range (and the degree with it) for
// data whose margins are wider, or raise l2 until MarginBound ≤ R for a guarantee.
package helr
