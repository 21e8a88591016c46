package cohort

import (
	"errors"
	"testing"

	"insitu/connectors/ident"
)

func TestNewLabels(t *testing.T) {
	l, err := NewLabels(ident.KindOpaque, []string{"1", "2", "7"}, []float64{0, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if y, ok := l.Get("2"); !ok || y != 1 || l.Len() != 3 || l.Positives() != 2 || l.Kind != ident.KindOpaque {
		t.Fatalf("labels: len %d, positives %d, kind %s", l.Len(), l.Positives(), l.Kind)
	}
	if _, err := NewLabels(ident.KindOpaque, []string{"1", "1"}, []float64{0, 1}); !errors.Is(err, ErrLabels) {
		t.Fatalf("a subject twice: %v", err)
	}
	if _, err := NewLabels(ident.KindOpaque, []string{"1"}, []float64{0.5}); !errors.Is(err, ErrLabels) {
		t.Fatalf("label 0.5: %v", err)
	}
}
