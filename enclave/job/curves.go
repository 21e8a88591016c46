package job

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
)

// Curve is a released job's ROC curve on its held-out part, for the stewards' console: counts and
// rates only, no score and no subject. Points are at most MaxCurvePoints, the first (0, 0) and the
// last (1, 1); AUC and KS are computed on the full curve.
type Curve struct {
	Positives int       `json:"positives"`
	Negatives int       `json:"negatives"`
	AUC       float64   `json:"auc"`
	KS        float64   `json:"ks"`
	FPR       []float64 `json:"fpr"`
	TPR       []float64 `json:"tpr"`
}

// MaxCurvePoints bounds a stored curve.
const MaxCurvePoints = 201

const curveMigration = `
CREATE TABLE job_curves (
	job_id TEXT PRIMARY KEY REFERENCES jobs (id),
	curve  BLOB NOT NULL
) STRICT;`

// NewCurve thins a full ROC curve (fpr, tpr ascending from (0,0) to (1,1)) to at most
// MaxCurvePoints points and computes its AUC (trapezoids) and KS (max TPR − FPR) on every point.
func NewCurve(fpr, tpr []float64, positives, negatives int) Curve {
	c := Curve{Positives: positives, Negatives: negatives}
	for i := range fpr {
		if i > 0 {
			c.AUC += (fpr[i] - fpr[i-1]) * (tpr[i] + tpr[i-1]) / 2
		}
		c.KS = max(c.KS, tpr[i]-fpr[i])
	}
	step := 1
	if len(fpr) > MaxCurvePoints {
		step = (len(fpr) + MaxCurvePoints - 2) / (MaxCurvePoints - 1)
	}
	for i := 0; i < len(fpr); i += step {
		c.FPR, c.TPR = append(c.FPR, fpr[i]), append(c.TPR, tpr[i])
	}
	if n := len(fpr); n > 0 && (len(c.FPR) == 0 || c.FPR[len(c.FPR)-1] != fpr[n-1] || c.TPR[len(c.TPR)-1] != tpr[n-1]) {
		c.FPR, c.TPR = append(c.FPR, fpr[n-1]), append(c.TPR, tpr[n-1])
	}
	return c
}

// SetCurveTx records job id's held-out ROC curve in the caller's transaction (the release's).
func (b *Board) SetCurveTx(ctx context.Context, tx *sql.Tx, id string, c Curve) error {
	if len(c.FPR) != len(c.TPR) || len(c.FPR) > MaxCurvePoints+1 {
		return fmt.Errorf("job %s: curve of %d and %d points: at most %d, as many of each", id, len(c.FPR), len(c.TPR), MaxCurvePoints)
	}
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO job_curves (job_id, curve) VALUES (?, ?) ON CONFLICT (job_id) DO UPDATE SET curve = excluded.curve`, id, data)
	return err
}

// Curve returns job id's held-out ROC curve; the error wraps ErrNotFound when none was recorded.
func (b *Board) Curve(ctx context.Context, id string) (*Curve, error) {
	var data []byte
	err := b.db.ReadTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT curve FROM job_curves WHERE job_id = ?`, id).Scan(&data)
	})
	if isNoRows(err) {
		return nil, fmt.Errorf("job %s: %w: no curve recorded", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var c Curve
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("job %s: curve: %w", id, err)
	}
	return &c, nil
}
