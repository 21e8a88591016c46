// Package metrics evaluates binary classifiers: ROC AUC, the Kolmogorov–Smirnov statistic, Gini,
// log-loss, ROC curves and confusion counts at a threshold.
//
// Call Evaluate for AUC, KS and Gini together (one sort); AUC, KS and Gini alone cost the same.
// Labels are float64 values that must be exactly 0 (negative, e.g. "good") or 1 (positive, e.g.
// "default"); scores are any real numbers where a higher score means "more likely positive" (a
// probability, a log-odds, a risk score). Ties between scores are handled exactly: a tied
// positive–negative pair counts one half towards the AUC, and the KS statistic and the ROC curve only
// move between distinct score values.
//
// Data-dependent problems (a label other than 0 or 1, a NaN score, an input with only one class) are
// returned as *Error values wrapping ErrLabel, ErrScore, ErrProbability, ErrOneClass or ErrEmpty.
// Labels and scores of different lengths are a programmer error and panic.
package metrics

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Sentinel errors, wrapped by *Error.
var (
	// ErrEmpty: there are no rows to evaluate.
	ErrEmpty = errors.New("no rows")
	// ErrOneClass: all labels are equal, so AUC, KS and Gini are undefined.
	ErrOneClass = errors.New("labels hold only one class: need both 0 and 1")
	// ErrLabel: a label is not exactly 0 or 1.
	ErrLabel = errors.New("label is not 0 or 1")
	// ErrScore: a score is NaN.
	ErrScore = errors.New("score is NaN")
	// ErrProbability: a predicted probability is outside [0, 1] or NaN.
	ErrProbability = errors.New("probability is outside [0, 1]")
)

// Error says which metric failed and, when one value is to blame, where it is.
type Error struct {
	Metric string  // "auc", "ks", "logloss", ...
	Index  int     // 0-based index of the offending value, or -1 when no single value is to blame
	Value  float64 // the offending value when Index >= 0
	Err    error   // one of the sentinel errors
}

func (e *Error) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("metrics: %s: %v", e.Metric, e.Err)
	}
	return fmt.Sprintf("metrics: %s: index %d (value %v): %v", e.Metric, e.Index, e.Value, e.Err)
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

// Summary holds the ranking metrics of one set of scores.
type Summary struct {
	N         int     `json:"n"`         // number of rows
	Positives int     `json:"positives"` // rows labelled 1
	AUC       float64 `json:"auc"`       // area under the ROC curve, in [0, 1]
	KS        float64 `json:"ks"`        // max |TPR − FPR| over thresholds, in [0, 1]
	Gini      float64 `json:"gini"`      // 2·AUC − 1, in [−1, 1]
}

// Evaluate computes AUC, KS and Gini of scores against 0/1 labels in O(n log n).
// It panics if len(y) != len(score).
func Evaluate(y, score []float64) (Summary, error) {
	pos, neg, err := split("evaluate", y, score)
	if err != nil {
		return Summary{}, err
	}
	auc, ks := aucKS(pos, neg)
	return Summary{N: len(y), Positives: len(pos), AUC: auc, KS: ks, Gini: 2*auc - 1}, nil
}

// AUC returns the area under the ROC curve: the probability that a randomly drawn positive scores
// higher than a randomly drawn negative, counting ties as one half (the Mann–Whitney U statistic
// divided by the number of positive–negative pairs, equivalently the average-rank formula). It is
// exact and runs in O(n log n). It panics if len(y) != len(score).
func AUC(y, score []float64) (float64, error) {
	pos, neg, err := split("auc", y, score)
	if err != nil {
		return 0, err
	}
	auc, _ := aucKS(pos, neg)
	return auc, nil
}

// KS returns the two-sample Kolmogorov–Smirnov statistic between the score distributions of
// positives and negatives: the largest |TPR − FPR| over all thresholds placed between distinct
// scores. It is the larger of max(TPR − FPR) (the figure usually computed from scikit-learn's
// roc_curve, and the one that matters for any model ranking positives higher) and max(FPR − TPR), so
// it does not depend on the score's orientation. It panics if len(y) != len(score).
func KS(y, score []float64) (float64, error) {
	pos, neg, err := split("ks", y, score)
	if err != nil {
		return 0, err
	}
	_, ks := aucKS(pos, neg)
	return ks, nil
}

// Gini returns the Gini coefficient (accuracy ratio) 2·AUC − 1. It panics if len(y) != len(score).
func Gini(y, score []float64) (float64, error) {
	pos, neg, err := split("gini", y, score)
	if err != nil {
		return 0, err
	}
	auc, _ := aucKS(pos, neg)
	return 2*auc - 1, nil
}

// split checks labels and scores and returns the scores of positives and of negatives, each sorted
// ascending.
func split(metric string, y, score []float64) (pos, neg []float64, err error) {
	if len(y) != len(score) {
		panic(fmt.Sprintf("metrics: %s: %d labels but %d scores", metric, len(y), len(score)))
	}
	if len(y) == 0 {
		return nil, nil, &Error{Metric: metric, Index: -1, Err: ErrEmpty}
	}
	np := 0
	for i, v := range y {
		switch v {
		case 1:
			np++
		case 0:
		default:
			return nil, nil, &Error{Metric: metric, Index: i, Value: v, Err: ErrLabel}
		}
		if math.IsNaN(score[i]) {
			return nil, nil, &Error{Metric: metric, Index: i, Value: score[i], Err: ErrScore}
		}
	}
	if np == 0 || np == len(y) {
		return nil, nil, &Error{Metric: metric, Index: -1, Err: ErrOneClass}
	}
	pos = make([]float64, 0, np)
	neg = make([]float64, 0, len(y)-np)
	for i, v := range y {
		if v == 1 {
			pos = append(pos, score[i])
		} else {
			neg = append(neg, score[i])
		}
	}
	slices.Sort(pos)
	slices.Sort(neg)
	return pos, neg, nil
}

// aucKS merges the two ascending score lists group by group of equal scores. AUC counts, for each
// positive, the negatives strictly below it plus half of those tied with it; KS is the largest gap
// between the two empirical distribution functions, evaluated after each group of ties.
// All counts are integers below 2^53, so the AUC is exact up to the final division.
func aucKS(pos, neg []float64) (auc, ks float64) {
	np, nn := float64(len(pos)), float64(len(neg))
	var i, j int // next unread index in neg and pos
	var u float64
	for i < len(neg) || j < len(pos) {
		var v float64
		switch {
		case i == len(neg):
			v = pos[j]
		case j == len(pos):
			v = neg[i]
		default:
			v = min(neg[i], pos[j])
		}
		i0, j0 := i, j
		for i < len(neg) && neg[i] == v {
			i++
		}
		for j < len(pos) && pos[j] == v {
			j++
		}
		cn, cp := float64(i-i0), float64(j-j0)
		u += cp * (float64(i0) + cn/2)
		if d := math.Abs(float64(i)/nn - float64(j)/np); d > ks {
			ks = d
		}
	}
	return u / (np * nn), ks
}

// Curve is a ROC curve: point k is (FPR[k], TPR[k]) when every score >= Threshold[k] is called
// positive. Thresholds descend over the distinct scores; the first point is (0, 0) at +Inf and the
// last is (1, 1).
type Curve struct {
	Threshold []float64 `json:"threshold"`
	FPR       []float64 `json:"fpr"`
	TPR       []float64 `json:"tpr"`
}

// ROC returns the ROC curve of scores against 0/1 labels, one point per distinct score.
// It panics if len(y) != len(score).
func ROC(y, score []float64) (Curve, error) {
	pos, neg, err := split("roc", y, score)
	if err != nil {
		return Curve{}, err
	}
	np, nn := float64(len(pos)), float64(len(neg))
	c := Curve{Threshold: []float64{math.Inf(1)}, FPR: []float64{0}, TPR: []float64{0}}
	i, j := len(neg), len(pos) // walk down from the top; neg[i:] and pos[j:] are called positive
	for i > 0 || j > 0 {
		var v float64
		switch {
		case i == 0:
			v = pos[j-1]
		case j == 0:
			v = neg[i-1]
		default:
			v = max(neg[i-1], pos[j-1])
		}
		for i > 0 && neg[i-1] == v {
			i--
		}
		for j > 0 && pos[j-1] == v {
			j--
		}
		c.Threshold = append(c.Threshold, v)
		c.FPR = append(c.FPR, float64(len(neg)-i)/nn)
		c.TPR = append(c.TPR, float64(len(pos)-j)/np)
	}
	return c, nil
}

// probEps bounds predicted probabilities away from 0 and 1 in LogLoss, as scikit-learn did.
const probEps = 1e-15

// LogLoss returns the mean negative log-likelihood of 0/1 labels under predicted probabilities p:
// −(1/n) Σ [y·log p + (1−y)·log(1−p)], with p clipped to [1e−15, 1 − 1e−15] so a confident mistake
// costs about 34.5 rather than +Inf. One class only is allowed. It panics if len(y) != len(p).
func LogLoss(y, p []float64) (float64, error) {
	if len(y) != len(p) {
		panic(fmt.Sprintf("metrics: logloss: %d labels but %d probabilities", len(y), len(p)))
	}
	if len(y) == 0 {
		return 0, &Error{Metric: "logloss", Index: -1, Err: ErrEmpty}
	}
	var s float64
	for i, v := range y {
		q := p[i]
		if !(q >= 0 && q <= 1) {
			return 0, &Error{Metric: "logloss", Index: i, Value: q, Err: ErrProbability}
		}
		q = min(max(q, probEps), 1-probEps)
		switch v {
		case 1:
			s -= math.Log(q)
		case 0:
			s -= math.Log1p(-q)
		default:
			return 0, &Error{Metric: "logloss", Index: i, Value: v, Err: ErrLabel}
		}
	}
	return s / float64(len(y)), nil
}

// Confusion holds the counts of a classifier that calls a row positive when its score is at least a
// threshold.
type Confusion struct {
	Threshold float64 `json:"threshold"`
	TP        int     `json:"tp"` // label 1, called positive
	FP        int     `json:"fp"` // label 0, called positive
	TN        int     `json:"tn"` // label 0, called negative
	FN        int     `json:"fn"` // label 1, called negative
}

// ConfusionAt counts outcomes when every score >= threshold is called positive. One class only is
// allowed. It panics if len(y) != len(score).
func ConfusionAt(y, score []float64, threshold float64) (Confusion, error) {
	if len(y) != len(score) {
		panic(fmt.Sprintf("metrics: confusion: %d labels but %d scores", len(y), len(score)))
	}
	if len(y) == 0 {
		return Confusion{}, &Error{Metric: "confusion", Index: -1, Err: ErrEmpty}
	}
	c := Confusion{Threshold: threshold}
	for i, v := range y {
		s := score[i]
		if math.IsNaN(s) {
			return Confusion{}, &Error{Metric: "confusion", Index: i, Value: s, Err: ErrScore}
		}
		called := s >= threshold
		switch {
		case v == 1 && called:
			c.TP++
		case v == 1:
			c.FN++
		case v == 0 && called:
			c.FP++
		case v == 0:
			c.TN++
		default:
			return Confusion{}, &Error{Metric: "confusion", Index: i, Value: v, Err: ErrLabel}
		}
	}
	return c, nil
}

// TPR is the true positive rate (recall, sensitivity) TP/(TP+FN); NaN without positives.
func (c Confusion) TPR() float64 { return ratio(c.TP, c.TP+c.FN) }

// FPR is the false positive rate FP/(FP+TN); NaN without negatives.
func (c Confusion) FPR() float64 { return ratio(c.FP, c.FP+c.TN) }

// Precision is TP/(TP+FP); NaN when nothing is called positive.
func (c Confusion) Precision() float64 { return ratio(c.TP, c.TP+c.FP) }

// Accuracy is (TP+TN)/n.
func (c Confusion) Accuracy() float64 { return ratio(c.TP+c.TN, c.TP+c.FP+c.TN+c.FN) }

// F1 is the harmonic mean of precision and recall, 2·TP/(2·TP+FP+FN); NaN when it is 0/0.
func (c Confusion) F1() float64 { return ratio(2*c.TP, 2*c.TP+c.FP+c.FN) }

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}
