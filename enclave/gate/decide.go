package gate

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/gonum/mat"

	"insitu/enclave/job/manifest"
	"insitu/modeling/logreg"
	"insitu/modeling/metrics"
	"insitu/plugins/sdk"
)

// Verdict values.
const (
	// VerdictVerified: the weights passed model verification.
	VerdictVerified = "verified"
	// VerdictWaived: a steward waived model verification for the job's family.
	VerdictWaived = "waived"
	// VerdictStructure: a tree ensemble or scorecard passed the structure checks (splits at answered
	// edges, declared bounds, rounded values).
	VerdictStructure = "structure_verified"
)

// Verdict is what the gate concluded about the released weights, and the parameters of its checks:
// everything a reader needs to recompute BitsBound from the released weights.
type Verdict struct {
	// Result is VerdictVerified or VerdictWaived.
	Result string `json:"result"`
	// Family is the manifest's model family.
	Family string `json:"family"`
	// Lambda is the L2 penalty of the objective verified against (sum-of-losses form, see
	// modeling/logreg); 0 when waived.
	Lambda float64 `json:"lambda"`
	// MaxRelDistance, DistanceFloor and MaxExcessLoss are the tolerances (Options); 0 when waived.
	MaxRelDistance float64 `json:"max_rel_distance"`
	DistanceFloor  float64 `json:"distance_floor"`
	MaxExcessLoss  float64 `json:"max_excess_loss"`
	// MaxAbs is the declared bound on every weight and the intercept.
	MaxAbs float64 `json:"max_abs"`
	// Step is the rounding step of the weights; ScoreStep that of the scores.
	Step      float64 `json:"step"`
	ScoreStep float64 `json:"score_step"`
	// Parameters is the number of released parameters: the weights and the intercept.
	Parameters int `json:"parameters"`
	// Radius bounds the distance of any accepted weight vector to the optimum, computed from the
	// released weights alone: ρ·max(‖θ̂‖₂/(1−ρ), floor); 0 when waived (the whole max_abs box counts).
	Radius float64 `json:"radius"`
	// BitsBound is the worst-case number of bits a plugin could hide in the released weights.
	BitsBound float64 `json:"bits_bound"`
	// Splits is the number of splits of released trees or bin edges of a released scorecard, and
	// SplitChoices the number of answered edges each could lie at (0: any value); BitsBound counts
	// them (ModelBitsBound).
	Splits       int `json:"splits,omitempty"`
	SplitChoices int `json:"split_choices,omitempty"`
}

// outcome is what passed the checks: the released artefacts.
type outcome struct {
	weights   *Weights   // nil when not declared (scores still come from the verified weights)
	trees     *Trees     // a gbdt job's ensemble
	scorecard *Scorecard // a scorecard job's points table
	scores    []Score
	metrics   map[string]float64
	verdict   Verdict
}

// Weights is the released linear model: P(y = 1 | x) = σ(Σ Values[j]·x[Names[j]] + Intercept).
type Weights struct {
	Names     []string  `json:"names"`
	Values    []float64 `json:"values"`
	Intercept float64   `json:"intercept"`
}

// Score is one cohort subject's released score, keyed by the bank's identifier.
type Score struct {
	Subject string  `json:"subject"`
	Score   float64 `json:"score"`
}

// supportedMetrics are the metrics the gate computes on the held-out rows.
var supportedMetrics = []string{"auc", "gini", "ks", "log_loss"}

func (g *Gate) decide(r Request, waiver *Waiver) (*outcome, *RefusalError) {
	m := r.Job.Manifest
	e := r.Eval
	switch {
	case m.Model.Family == sdk.FamilyScorecard && m.Outputs.Scorecard != nil:
		return g.decideScorecard(r)
	case m.Model.Family == sdk.FamilyGBDT && m.Outputs.Trees != nil:
		return g.decideTrees(r)
	}
	w, rerr := declaredWeights(r)
	if rerr != nil {
		return nil, rerr
	}
	decl := m.Outputs.Weights
	step := g.opts.Step
	if step == 0 {
		step = decl.MaxAbs * g.opts.RelativeStep
	}
	rounded := roundWeights(w, step)
	if rerr := checkBounds(rounded, decl); rerr != nil {
		return nil, rerr
	}
	theta := append(slices.Clone(rounded.Values), rounded.Intercept)
	v := Verdict{Family: m.Model.Family, MaxAbs: decl.MaxAbs, Step: step, ScoreStep: g.opts.ScoreStep, Parameters: len(theta)}
	switch {
	case m.Model.Family == sdk.FamilyLogisticRegression:
		lambda, rerr := objectiveLambda(m, len(e.TrainY))
		if rerr != nil {
			return nil, rerr
		}
		if rerr := g.verifyLogistic(e, rounded, lambda); rerr != nil {
			return nil, rerr
		}
		rho := g.opts.MaxRelDistance
		v.Result, v.Lambda = VerdictVerified, lambda
		v.MaxRelDistance, v.DistanceFloor, v.MaxExcessLoss = rho, g.opts.DistanceFloor, g.opts.MaxExcessLoss
		v.Radius = PublicRadius(theta, rho, g.opts.DistanceFloor)
	case waiver != nil:
		v.Result = VerdictWaived
	default:
		return nil, refuse(CodeFamily, fmt.Sprintf("the gate verifies only the family %s; a job of family %s needs a steward's waiver of model verification",
			sdk.FamilyLogisticRegression, m.Model.Family))
	}
	v.BitsBound = BitsBound(v.Parameters, v.Radius, v.Step, v.MaxAbs)

	out := &outcome{verdict: v, weights: rounded}
	if rerr := releaseScores(m, e, linearScores(e, rounded, g.opts.ScoreStep), out); rerr != nil {
		return nil, rerr
	}
	return out, nil
}

// releaseScores applies step 5: the recomputed scores of every cohort subject within the declared
// range, and the declared metrics on the held-out rows.
func releaseScores(m *manifest.Manifest, e *Evaluation, all []float64, out *outcome) *RefusalError {
	if s := m.Outputs.Scores; s != nil {
		lo, hi := 0.0, 1.0
		if len(s.Range) == 2 {
			lo, hi = s.Range[0], s.Range[1]
		}
		for _, p := range all {
			if p < lo || p > hi {
				return refuse(CodeScoreRange, "a recomputed score falls outside the declared scores range; declare range [0, 1] for probabilities")
			}
		}
		out.scores = make([]Score, len(all))
		for i, p := range all {
			out.scores[i] = Score{Subject: e.Subjects[i], Score: p}
		}
		sort.Slice(out.scores, func(a, b int) bool { return out.scores[a].Subject < out.scores[b].Subject })
	}
	if mo := m.Outputs.Metrics; mo != nil {
		mets, rerr := heldOutMetrics(mo.Names, e.TestY, all[len(e.TrainY):])
		if rerr != nil {
			return rerr
		}
		out.metrics = mets
	}
	return nil
}

// declaredWeights applies steps 1 and 2: the output holds only declared outputs, and the weights
// (decrypted in HE mode, from the declared ciphertexts only) have the declared shape.
func declaredWeights(r Request) (*Weights, *RefusalError) {
	m, o, feats := r.Job.Manifest, r.Output, r.Eval.Features
	if o.Trees != nil {
		return nil, refuse(CodeUndeclaredOutput, "the output holds trees, which no manifest output declares")
	}
	// The plugin's own scores and metrics are figures it computed as it pleased: they are a free
	// channel and never leave. The released scores and metrics are the enclave's (step 5), so a
	// plugin's scores and metrics are dropped here, declared or not, not refused.
	if m.Outputs.Weights == nil {
		return nil, refuse(CodeWeightsMissing, "the gate releases linear models only, and computes every score from released weights: the manifest must declare outputs.weights")
	}
	var w *Weights
	if m.Mode == sdk.ModeHE {
		if o.Weights != nil {
			return nil, refuse(CodePlaintextWeightsInHE, "an HE job's weights must come as ciphertexts; the output holds plaintext weights")
		}
		var rerr *RefusalError
		if w, rerr = decryptWeights(o.Ciphertexts, feats, r.Decrypt); rerr != nil {
			return nil, rerr
		}
	} else {
		if len(o.Ciphertexts) > 0 {
			return nil, refuse(CodeUndeclaredCiphertext, fmt.Sprintf("ciphertexts are an output of HE jobs only; this job's mode is %s", m.Mode))
		}
		if o.Weights == nil {
			return nil, refuse(CodeWeightsMissing, "the output holds no weights")
		}
		w = &Weights{Names: o.Weights.Names, Values: o.Weights.Values, Intercept: o.Weights.Intercept}
	}
	if len(w.Values) > m.Outputs.Weights.MaxWeights {
		return nil, refuse(CodeTooManyWeights, fmt.Sprintf("the output holds more weights than the declared max_weights %d", m.Outputs.Weights.MaxWeights))
	}
	if len(w.Names) != len(w.Values) || !slices.Equal(w.Names, feats) {
		return nil, refuse(CodeWeightNames, "the weights must be named exactly as the job's features, in the same order")
	}
	if rerr := checkBounds(w, m.Outputs.Weights); rerr != nil {
		return nil, rerr
	}
	return w, nil
}

func decryptWeights(cts []sdk.Ciphertext, feats []string, decrypt func([]byte) (float64, error)) (*Weights, *RefusalError) {
	want := make(map[string]int, len(feats)+1)
	for j, f := range feats {
		want[CiphertextWeightPrefix+f] = j
	}
	want[CiphertextIntercept] = len(feats)
	got := make([][]byte, len(feats)+1)
	for _, c := range cts {
		j, ok := want[c.Name]
		if !ok {
			return nil, refuse(CodeUndeclaredCiphertext, fmt.Sprintf("the ciphertext %q is not a declared output: only %s<feature> per feature and %s are decrypted",
				c.Name, CiphertextWeightPrefix, CiphertextIntercept))
		}
		if got[j] != nil {
			return nil, refuse(CodeUndeclaredCiphertext, fmt.Sprintf("the ciphertext %q appears twice", c.Name))
		}
		got[j] = c.Data
	}
	for j, b := range got {
		if b == nil {
			name := CiphertextIntercept
			if j < len(feats) {
				name = CiphertextWeightPrefix + feats[j]
			}
			return nil, refuse(CodeMissingCiphertext, fmt.Sprintf("the output lacks the ciphertext %q", name))
		}
	}
	if decrypt == nil {
		return nil, refuse(CodeCiphertext, "the enclave holds no decryption key for this job")
	}
	vals := make([]float64, len(got))
	for j, b := range got {
		v, err := decrypt(b)
		if err != nil {
			return nil, &RefusalError{Code: CodeCiphertext, Reason: "a weight ciphertext does not decrypt under the job's key", detail: err.Error()}
		}
		vals[j] = v
	}
	return &Weights{Names: slices.Clone(feats), Values: vals[:len(feats)], Intercept: vals[len(feats)]}, nil
}

func checkBounds(w *Weights, decl *manifest.WeightsOutput) *RefusalError {
	for _, v := range append(slices.Clone(w.Values), w.Intercept) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return refuse(CodeNotFinite, "a weight or the intercept is not a finite number")
		}
		if math.Abs(v) > decl.MaxAbs {
			return refuse(CodeWeightBound, fmt.Sprintf("a weight or the intercept exceeds the declared max_abs %g", decl.MaxAbs))
		}
	}
	return nil
}

// roundWeights rounds every weight and the intercept to the nearest multiple of step.
func roundWeights(w *Weights, step float64) *Weights {
	out := &Weights{Names: slices.Clone(w.Names), Values: make([]float64, len(w.Values)), Intercept: roundTo(w.Intercept, step)}
	for j, v := range w.Values {
		out.Values[j] = roundTo(v, step)
	}
	return out
}

func roundTo(v, step float64) float64 {
	r := math.Round(v/step) * step
	if r == 0 {
		return 0 // no negative zero
	}
	return r
}

// objectiveLambda returns the λ of modeling/logreg's objective (sum of the row losses plus
// (λ/2)‖w‖²) that the job's hyperparameters declare: "lambda" is that λ (plugins/logreg's
// hyperparameter); "l2" is the penalty of the mean-loss form, (1/n)Σ loss + (l2/2)‖w‖², the same
// optimum as λ = l2·n. With neither, λ = 1, plugins/logreg's default.
func objectiveLambda(m *manifest.Manifest, nTrain int) (float64, *RefusalError) {
	hp := m.Model.Hyperparameters
	num := func(key string) (float64, bool, *RefusalError) {
		v, ok := hp[key]
		if !ok {
			return 0, false, nil
		}
		f, isNum := v.(float64)
		if !isNum || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, false, refuse(CodeHyperparameters, fmt.Sprintf("the hyperparameter %s must be a number >= 0", key))
		}
		return f, true, nil
	}
	lam, hasLam, rerr := num("lambda")
	if rerr != nil {
		return 0, rerr
	}
	l2, hasL2, rerr := num("l2")
	if rerr != nil {
		return 0, rerr
	}
	switch {
	case hasLam && hasL2:
		return 0, refuse(CodeHyperparameters, "give the L2 penalty once: lambda (sum of losses) or l2 (mean loss), not both")
	case hasL2:
		return l2 * float64(nTrain), nil
	case hasLam:
		return lam, nil
	}
	return 1, nil
}

// verifyLogistic checks the rounded weights against the enclave's own optimum of the objective.
func (g *Gate) verifyLogistic(e *Evaluation, w *Weights, lambda float64) *RefusalError {
	n, d := len(e.TrainY), len(e.Features)
	data := make([]float64, n*d)
	for j := range d {
		col := e.TrainX[j]
		for i := range n {
			data[i*d+j] = col[i]
		}
	}
	p := logreg.Problem{X: mat.NewDense(n, d, data), Y: e.TrainY, Lambda: lambda}
	ref, err := logreg.Fit(p, logreg.Options{})
	if err != nil {
		return &RefusalError{Code: CodeReferenceFit, Reason: "the enclave could not compute the optimum of the declared objective on the cohort, so the weights cannot be verified",
			detail: err.Error()}
	}
	var dist2, ref2 float64
	for j, v := range w.Values {
		dist2 += (v - ref.Weights[j]) * (v - ref.Weights[j])
		ref2 += ref.Weights[j] * ref.Weights[j]
	}
	dist2 += (w.Intercept - ref.Intercept) * (w.Intercept - ref.Intercept)
	ref2 += ref.Intercept * ref.Intercept
	rel := math.Sqrt(dist2) / math.Max(math.Sqrt(ref2), g.opts.DistanceFloor)
	if !(rel <= g.opts.MaxRelDistance) {
		return &RefusalError{Code: CodeFarFromOptimum,
			Reason: fmt.Sprintf("the weights are not near the optimum of the declared objective (tolerance: relative distance %g)", g.opts.MaxRelDistance),
			detail: fmt.Sprintf("relative distance %.4g", rel)}
	}
	excess := (p.Objective(w.Values, w.Intercept) - ref.Objective) / float64(n)
	if !(excess <= g.opts.MaxExcessLoss) {
		return &RefusalError{Code: CodeExcessLoss,
			Reason: fmt.Sprintf("the weights' objective exceeds the optimum's by more than the tolerance of %g per row", g.opts.MaxExcessLoss),
			detail: fmt.Sprintf("excess %.4g per row", excess)}
	}
	return nil
}

// linearScores returns σ(w·x + b), rounded to step, for every train row then every test row.
func linearScores(e *Evaluation, w *Weights, step float64) []float64 {
	nTrain, nTest := len(e.TrainY), len(e.TestY)
	out := make([]float64, nTrain+nTest)
	for i := range out {
		z := w.Intercept
		for j := range w.Values {
			if i < nTrain {
				z += w.Values[j] * e.TrainX[j][i]
			} else {
				z += w.Values[j] * e.TestX[j][i-nTrain]
			}
		}
		out[i] = roundTo(1/(1+math.Exp(-z)), step)
	}
	return out
}

// heldOutMetrics computes the declared metrics the gate supports on the held-out rows.
func heldOutMetrics(names []string, y, score []float64) (map[string]float64, *RefusalError) {
	out := map[string]float64{}
	want := func(n string) bool { return slices.Contains(names, n) }
	var unsupported []string
	for _, n := range names {
		if !slices.Contains(supportedMetrics, n) {
			unsupported = append(unsupported, n)
		}
	}
	if len(unsupported) > 0 {
		return nil, refuse(CodeMetrics, fmt.Sprintf("the gate computes only the metrics %s; the manifest declares %s",
			strings.Join(supportedMetrics, ", "), strings.Join(unsupported, ", ")))
	}
	if len(y) == 0 {
		return nil, refuse(CodeMetrics, "the cohort has no held-out rows to compute metrics on")
	}
	if want("auc") || want("ks") || want("gini") {
		s, err := metrics.Evaluate(y, score)
		if err != nil {
			return nil, &RefusalError{Code: CodeMetrics, Reason: "the held-out rows do not allow the declared metrics (both classes are needed)", detail: err.Error()}
		}
		if want("auc") {
			out["auc"] = s.AUC
		}
		if want("ks") {
			out["ks"] = s.KS
		}
		if want("gini") {
			out["gini"] = s.Gini
		}
	}
	if want("log_loss") {
		ll, err := metrics.LogLoss(y, score)
		if err != nil {
			return nil, &RefusalError{Code: CodeMetrics, Reason: "the held-out rows do not allow the log-loss", detail: err.Error()}
		}
		out["log_loss"] = ll
	}
	return out, nil
}
