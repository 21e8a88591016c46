package cohort

import (
	"fmt"
	"time"

	"insitu/connectors/ident"
)

// NewLabels returns labels for the given subjects (canonical identifiers of kind), y[i] the label of
// subjects[i]: the labels a dataset that carries its own outcome gives (CollectLabelColumn), in the
// form a bank's label file takes. A label other than 0 or 1 or a subject given twice is an error
// naming its position. It panics if the two lengths differ (programmer error).
func NewLabels(kind ident.Kind, subjects []string, y []float64) (*Labels, error) {
	if len(subjects) != len(y) {
		panic(fmt.Sprintf("cohort: NewLabels with %d subjects and %d labels", len(subjects), len(y)))
	}
	l := &Labels{Kind: kind, y: make(map[string]float64, len(y)), obs: map[string]time.Time{}}
	for i, id := range subjects {
		if y[i] != 0 && y[i] != 1 {
			return nil, fmt.Errorf("%w: subject %d: label %g is not 0 or 1", ErrLabels, i+1, y[i])
		}
		if _, dup := l.y[id]; dup {
			return nil, fmt.Errorf("%w: subject %d: %s is labelled twice", ErrLabels, i+1, maskFor(kind, id))
		}
		l.y[id] = y[i]
	}
	return l, nil
}
