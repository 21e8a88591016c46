// Package helr is the plaintext mirror of insitu's logistic regression on CKKS-encrypted data
// (plugins/helr): the same polynomial sigmoid, optimiser, schedule, regularisation and scaling,
// computed step for step in float64. It is the reference an encrypted run is tested against; the
// exact optimum of the same objective comes from modeling/logreg.
//
// Call DefaultConfig, adjust it (a job's hyperparameters decode into Config), then Fit with the
// features column by column and the labels; FeatureSpec is the transform of a numeric column that
// the defaults suit. Step runs one iteration on a State, for comparing a single
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
//
// # Features
//
// A few iterations with a fixed step need features of about unit variance, and the polynomial
// sigmoid needs the optimum's margins inside [−R, R]. FeatureSpec is the transform the defaults are
// chosen for: impute the median, winsorise at the training 1 % and 99 % quantiles, standardise,
// clip to [−4, 4]. Standardising a heavy-tailed column and then clipping it, without winsorising
// first, meets neither need: a few extreme values inflate the standard deviation, so the bulk of
// the rows sits in a narrow band near 0. On the public Give Me Some Credit data (120,000 training
// rows, 10 columns) so transformed, revolving utilisation keeps a variance of 0.02 and the three
// past-due counts (whose sentinel codes 96 and 98 set their standard deviation) 0.04–0.06; the
// covariance's eigenvalues span 0.006 to 1.38; the optimum puts weights of 1.7 on the past-due
// counts; ten iterations at step 1 reach test AUC 0.725 against the optimum's 0.781. More
// iterations or a larger step pass through a narrow window near the optimum's AUC (40 iterations at
// step 1, 20 at step 4) and then diverge (60 at step 1, 30 at step 4): the rows with the sentinel
// codes sit at the clip on three correlated columns, their margins at the optimum reach 12.8,
// outside [−8, 8] where the degree-7 polynomial is wrong by orders of magnitude. A diagonal
// (Jacobi) preconditioner reaches those margins sooner and diverged at every step tried from 0.25
// to 2. Winsorised first, every column has variance 0.55–1, the eigenvalues span 0.38–1.90, the
// optimum's margins stay within 5.7, and the default ten iterations reach test AUC 0.8535 against
// the optimum's 0.8528 on the same features (the Taiwan data: 0.7311 against 0.7322); a Jacobi
// preconditioner then changes nothing (every variance is near 1). Min-max scaling to [−1, 1] after
// winsorising leaves skewed columns off-centre (means near −0.85, correlated with the intercept)
// and needs a larger step and more iterations.
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
// data transformed by FeatureSpec has max |u_i| = 7.5 on the Taiwan data, 5.7 on Give Me Some
// Credit). The default R = 8 is chosen from those measured margins and the doc of Config says so; raise sigmoid_range (and the degree with it) for
// data whose margins are wider, or raise l2 until MarginBound ≤ R for a guarantee.
package helr
