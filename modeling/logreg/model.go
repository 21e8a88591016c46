package logreg

import (
	"fmt"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// Model is a fitted logistic regression: P(y = 1 | x) = σ(Weights·x + Intercept).
type Model struct {
	Weights      []float64 `json:"weights"`
	Intercept    float64   `json:"intercept"`
	FeatureNames []string  `json:"feature_names,omitempty"`
	// Lambda is the L2 penalty the model was fitted with.
	Lambda float64 `json:"lambda"`
	// Iterations counts the Newton steps taken.
	Iterations int `json:"iterations"`
	// Converged reports whether the tolerance was met.
	Converged bool `json:"converged"`
	// Objective is f(Weights, Intercept) on the training data.
	Objective float64 `json:"objective"`
	// GradNorm is ‖∇f‖₂ at (Weights, Intercept) on the training data: the KKT residual.
	GradNorm float64 `json:"grad_norm"`
}

func (m *Model) checkCols(X mat.Matrix) (n int) {
	n, d := X.Dims()
	if d != len(m.Weights) {
		panic(fmt.Sprintf("logreg: X has %d columns but the model has %d weights", d, len(m.Weights)))
	}
	return n
}

// Decision returns the log-odds w·x_i + b of every row of X. It panics if X does not have one column
// per weight.
func (m *Model) Decision(X mat.Matrix) []float64 {
	m.checkCols(X)
	r := Problem{X: X}.rows()
	z := make([]float64, r.n)
	r.margins(z, m.Weights, m.Intercept)
	return z
}

// PredictProba returns P(y = 1) for every row of X. It panics if X does not have one column per
// weight.
func (m *Model) PredictProba(X mat.Matrix) []float64 {
	z := m.Decision(X)
	for i, v := range z {
		z[i] = sigmoid(v)
	}
	return z
}

// Predict returns the class, 1 or 0, of every row of X: 1 when the log-odds are positive
// (probability above ½). It panics if X does not have one column per weight.
func (m *Model) Predict(X mat.Matrix) []float64 {
	z := m.Decision(X)
	for i, v := range z {
		if v > 0 {
			z[i] = 1
		} else {
			z[i] = 0
		}
	}
	return z
}

// Score returns P(y = 1) for one row x, for online scoring. It panics if len(x) != len(Weights).
func (m *Model) Score(x []float64) float64 {
	if len(x) != len(m.Weights) {
		panic(fmt.Sprintf("logreg: row has %d values but the model has %d weights", len(x), len(m.Weights)))
	}
	return sigmoid(floats.Dot(m.Weights, x) + m.Intercept)
}
