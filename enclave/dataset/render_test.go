package dataset

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteText(t *testing.T) {
	ctx := context.Background()
	s, root := newTestStore(t)
	var b strings.Builder
	if err := WriteListText(&b, nil); err != nil || !strings.Contains(b.String(), "no datasets") {
		t.Fatalf("empty list: %q %v", b.String(), err)
	}
	f := newFixture(t, 100, 60, 0)
	m, _ := ingest(t, s, f, IngestOptions{})
	b.Reset()
	if err := m.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"dataset credit v1 (synthetic), 110 subjects keyed by uscc",
		"float      CNY   zhejiang_tax_bureau  tax     2            Tax arrears in 24 months",
		"zhejiang_high_court",
		"tax     zhejiang_tax_bureau",
		"tax.csv",
		"tax_arrears_history.arrears_amount_24m 86.0%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("manifest text lacks %q:\n%s", want, out)
		}
	}
	list, _ := s.List(ctx)
	b.Reset()
	WriteListText(&b, list)
	if !strings.Contains(b.String(), "credit   v1       synthetic") || !strings.Contains(b.String(), "tax, court") {
		t.Errorf("list text:\n%s", b.String())
	}
	res, err := s.Verify(ctx, "credit", 1)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	res.WriteText(&b)
	if !strings.HasSuffix(b.String(), "dataset credit v1 verified: 13 checks passed\n") || strings.Contains(b.String(), "FAIL") {
		t.Errorf("verify text:\n%s", b.String())
	}
	flipByte(t, filepath.Join(root, "credit", "v1", partFile("court")), 200)
	res, _ = s.Verify(ctx, "credit", 1)
	b.Reset()
	res.WriteText(&b)
	if !strings.Contains(b.String(), "FAIL  part court: open") || !strings.Contains(b.String(), "FAILED verification: 1 of") {
		t.Errorf("failed verify text:\n%s", b.String())
	}
	os.Remove(filepath.Join(root, "credit", "v1", manifestMACFile))
	list, _ = s.List(ctx)
	b.Reset()
	WriteListText(&b, list)
	if !strings.Contains(b.String(), "unreadable: read manifest") {
		t.Errorf("list of a damaged version:\n%s", b.String())
	}
}
