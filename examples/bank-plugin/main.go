// Command bank-plugin is an example of a model plugin a bank writes for insitu: a naive Bayes
// classifier with one pooled variance per feature, whose log-odds are linear in the features, so
// it returns a weight vector like a logistic regression would. It trains on the plaintext rows of
// a public or synthetic dataset. See README.md for how to test, build and upload it.
package main

import (
	"context"
	"fmt"
	"math"

	"insitu/modeling/metrics"
	"insitu/plugins/sdk"
)

func main() { sdk.Serve(&NaiveBayes{}) }

// NaiveBayes is the plugin's model.
type NaiveBayes struct{}

// Hyperparameters are read from the job's hyperparameters object, e.g. {"min_variance": 1e-6}.
type Hyperparameters struct {
	// MinVariance floors each pooled variance, so a constant feature gets weight 0.
	MinVariance float64 `json:"min_variance"`
}

// Describe tells the enclave what this plugin is and what it returns.
func (*NaiveBayes) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:    "bank-naive-bayes",
		Version: "0.1.0",
		Family:  "naive_bayes",
		Mode:    sdk.ModePlaintextPublic,
		Outputs: []sdk.OutputKind{sdk.OutputWeights, sdk.OutputScores, sdk.OutputMetrics},
		Needs:   sdk.Needs{Labels: true},
	}, nil
}

// Train computes per-class means and pooled variances, and from them the linear log-odds
// w_j = (μ1_j − μ0_j) / s_j² and b = log(n1/n0) − Σ_j w_j (μ1_j + μ0_j) / 2.
func (*NaiveBayes) Train(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
	hp := Hyperparameters{MinVariance: 1e-9}
	if err := in.Hyperparameters.Decode(&hp); err != nil {
		return nil, err
	}
	tab, err := sdk.ReadTable(ctx, in)
	if err != nil {
		return nil, err
	}
	d := len(tab.Features)
	var n [2]float64
	sum := [2][]float64{make([]float64, d), make([]float64, d)}
	for i := range tab.Len() {
		c := int(tab.Y[i])
		n[c]++
		for j, v := range tab.Row(i) {
			sum[c][j] += v
		}
	}
	if n[0] == 0 || n[1] == 0 || n[0]+n[1] < 3 {
		return nil, fmt.Errorf("need both classes and at least 3 rows, got %v negatives and %v positives", n[0], n[1])
	}
	ss := make([]float64, d)
	for i := range tab.Len() {
		c := int(tab.Y[i])
		for j, v := range tab.Row(i) {
			dv := v - sum[c][j]/n[c]
			ss[j] += dv * dv
		}
	}
	w := &sdk.Weights{Names: tab.Features, Values: make([]float64, d), Intercept: math.Log(n[1] / n[0])}
	for j := range d {
		mu0, mu1 := sum[0][j]/n[0], sum[1][j]/n[1]
		variance := math.Max(ss[j]/(n[0]+n[1]-2), hp.MinVariance)
		w.Values[j] = (mu1 - mu0) / variance
		w.Intercept -= w.Values[j] * (mu0 + mu1) / 2
	}

	out := &sdk.Output{Weights: w, Scores: make([]sdk.Score, tab.Len()), Metrics: map[string]float64{"rows": float64(tab.Len())}}
	p := make([]float64, tab.Len())
	for i := range tab.Len() {
		z := w.Intercept
		for j, v := range tab.Row(i) {
			z += w.Values[j] * v
		}
		p[i] = 1 / (1 + math.Exp(-z))
		out.Scores[i] = sdk.Score{Subject: tab.Subjects[i], Value: p[i]}
	}
	if auc, err := metrics.AUC(tab.Y, p); err == nil {
		out.Metrics["auc"] = auc
	}
	in.Log.Info("trained", "rows", tab.Len(), "features", d)
	return out, nil
}
