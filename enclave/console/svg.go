package console

import (
	"fmt"
	"strconv"
	"strings"

	"insitu/enclave/job"
)

// Chart geometry: a square plot of side plotSize inside a margin, in SVG user units.
const (
	plotSize = 240.0
	margin   = 40.0
)

// charts are the ROC and KS charts of one released model, as SVG coordinates the template draws.
type charts struct {
	AUC, KS              string
	Positives, Negatives int
	ROC                  string // polyline points
	KSPos, KSNeg         string // cumulative positives and negatives against the population share
	KSX, KSY1, KSY2      string // the KS line
	Ticks                []tick
	ROCTitle, KSTitle    string
	ROCDesc, KSDesc      string
}

type tick struct {
	Pos   string // position along an axis
	Label string
}

func px(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// x and y map [0, 1] to the plot.
func x(v float64) float64 { return margin + v*plotSize }
func y(v float64) float64 { return margin + (1-v)*plotSize }

func newCharts(c *job.Curve, l *lang) *charts {
	ch := &charts{AUC: strconv.FormatFloat(c.AUC, 'f', 4, 64), KS: strconv.FormatFloat(c.KS, 'f', 4, 64),
		Positives: c.Positives, Negatives: c.Negatives, ROCTitle: l.T("released.roc"), KSTitle: l.T("released.ks")}
	var roc, pos, neg strings.Builder
	n := float64(c.Positives + c.Negatives)
	best, bestAt := -1.0, 0
	for i := range c.FPR {
		fmt.Fprintf(&roc, "%s,%s ", px(x(c.FPR[i])), px(y(c.TPR[i])))
		share := 0.0
		if n > 0 {
			share = (c.TPR[i]*float64(c.Positives) + c.FPR[i]*float64(c.Negatives)) / n
		}
		fmt.Fprintf(&pos, "%s,%s ", px(x(share)), px(y(c.TPR[i])))
		fmt.Fprintf(&neg, "%s,%s ", px(x(share)), px(y(c.FPR[i])))
		if d := c.TPR[i] - c.FPR[i]; d > best {
			best, bestAt = d, i
		}
	}
	ch.ROC, ch.KSPos, ch.KSNeg = strings.TrimSpace(roc.String()), strings.TrimSpace(pos.String()), strings.TrimSpace(neg.String())
	if len(c.FPR) > 0 && n > 0 {
		share := (c.TPR[bestAt]*float64(c.Positives) + c.FPR[bestAt]*float64(c.Negatives)) / n
		ch.KSX, ch.KSY1, ch.KSY2 = px(x(share)), px(y(c.TPR[bestAt])), px(y(c.FPR[bestAt]))
	}
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 1} {
		ch.Ticks = append(ch.Ticks, tick{Pos: px(x(v)), Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	ch.ROCDesc = fmt.Sprintf("ROC: AUC %s, %d positives, %d negatives", ch.AUC, c.Positives, c.Negatives)
	ch.KSDesc = fmt.Sprintf("KS %s", ch.KS)
	return ch
}

// YTick returns the y position of a tick value in [0, 1] (the ticks' Label).
func (t tick) YPos() string {
	v, _ := strconv.ParseFloat(t.Label, 64)
	return px(y(v))
}
