package enclave

import (
	"context"
	"database/sql"

	"insitu/enclave/gate"
	"insitu/enclave/job"
	"insitu/modeling/metrics"
)

// recordCurve wraps a release's OnCommit hook so that the release also records, in its own
// transaction, the ROC curve of the released scores on the cohort's held-out part (job.Curve: rates
// and counts only), which the stewards' console charts. A release without scores, or whose held-out
// part has one class only, records none.
func (e *Enclave) recordCurve(c *Cohort, next func(context.Context, *sql.Tx, *gate.Bundle, *gate.Receipt) error) func(context.Context, *sql.Tx, *gate.Bundle, *gate.Receipt) error {
	return func(ctx context.Context, tx *sql.Tx, b *gate.Bundle, rec *gate.Receipt) error {
		if next != nil {
			if err := next(ctx, tx, b, rec); err != nil {
				return err
			}
		}
		cv, ok := heldOutCurve(c, b)
		if !ok {
			return nil
		}
		return e.Jobs.SetCurveTx(ctx, tx, rec.Job, cv)
	}
}

// heldOutCurve computes the ROC curve of b's released scores on c's held-out subjects.
func heldOutCurve(c *Cohort, b *gate.Bundle) (job.Curve, bool) {
	if len(b.Scores) == 0 || c.Test == 0 || len(c.Subjects) != c.Train+c.Test || len(c.YTest) != c.Test {
		return job.Curve{}, false
	}
	byID := make(map[string]float64, len(b.Scores))
	for _, s := range b.Scores {
		byID[s.Subject] = s.Score
	}
	y := make([]float64, 0, c.Test)
	score := make([]float64, 0, c.Test)
	pos := 0
	for i, id := range c.Subjects[c.Train:] {
		s, ok := byID[id]
		if !ok {
			continue
		}
		y, score = append(y, c.YTest[i]), append(score, s)
		if c.YTest[i] == 1 {
			pos++
		}
	}
	roc, err := metrics.ROC(y, score)
	if err != nil {
		return job.Curve{}, false
	}
	return job.NewCurve(roc.FPR, roc.TPR, pos, len(y)-pos), true
}
