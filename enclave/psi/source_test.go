package psi_test

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"

	"insitu/connectors"
	"insitu/connectors/ident"
	"insitu/connectors/synthetic"
	"insitu/enclave"
	"insitu/enclave/consent"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/keys"
	"insitu/enclave/psi"
)

// platform is an enclave holding a synthetic dataset and the synthetic bank's authorizations.
type platform struct {
	e        *enclave.Enclave
	sum      *synthetic.Summary
	dataset  *dataset.Manifest
	subjects []string
	labelled []string
}

func newPlatform(t *testing.T, enterprises int) *platform {
	t.Helper()
	dir := t.TempDir()
	p := &platform{}
	var err error
	synth := filepath.Join(dir, "synth")
	if p.sum, err = synthetic.Generate(synthetic.Config{Enterprises: enterprises, Seed: 21}, synth); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "master.key")
	init, err := datadir.Init(filepath.Join(dir, "dd"), keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if p.e, err = enclave.Open(ctx, init.Dir, keys.Source{File: keyFile}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.e.Close() })
	p.e.Consent = consent.New(p.e.DB, p.e.Audit, consent.Options{Now: func() time.Time { return synthetic.DefaultAsOf.Add(-time.Minute) }})
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(synth, "dataset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if p.dataset, _, err = p.e.Ingest(ctx, "test", spec, mappings, dataset.IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	af, err := os.Open(filepath.Join(synth, "authorizations.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer af.Close()
	if _, err := p.e.Consent.Import(ctx, "test", "authorizations.csv", af); err != nil {
		t.Fatal(err)
	}
	sc, err := p.e.Datasets.Scan(ctx, p.dataset.Name, 0, dataset.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	for {
		rec, err := sc.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		col := rec.Column(0).(*array.String)
		for i := range col.Len() {
			p.subjects = append(p.subjects, col.Value(i))
		}
		rec.Release()
	}
	lf, err := os.Open(filepath.Join(synth, "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	labels, err := psi.ReadIDs("labels.csv", lf, ident.KindUSCC)
	if err != nil || labels.InvalidRows != 0 {
		t.Fatal(err, labels.Invalid)
	}
	p.labelled = labels.IDs
	return p
}

// authorizes reports whether subject has a current authorization for bank and the purpose at at,
// by the registry's list, not by the code under test.
func (p *platform) authorizes(t *testing.T, subject, bank string, at time.Time) bool {
	t.Helper()
	as, err := p.e.Consent.List(ctx, consent.Filter{Grantee: bank, Purpose: consent.PurposeModelDevelopment, IDType: ident.KindUSCC,
		Identifier: subject, Status: consent.StatusCurrent, At: at})
	if err != nil {
		t.Fatal(err)
	}
	return len(as) > 0
}

func TestOnlyAuthorizingSubjectsAreFound(t *testing.T) {
	p := newPlatform(t, 400)
	bank := p.sum.Bank
	at := synthetic.DefaultAsOf.Add(12 * time.Hour)
	// The bank's list: its borrowers, some other platform subjects, and enterprises not on the
	// platform.
	labelled := map[string]bool{}
	for _, s := range p.labelled {
		labelled[s] = true
	}
	ids := slices.Clone(p.labelled)
	var others []string
	for _, s := range p.subjects {
		if !labelled[s] {
			others = append(others, s)
		}
	}
	ids = append(ids, others[:20]...)
	ids = append(ids, usccs(99, 30)...)
	// One authorizing borrower revokes; one platform subject authorizes another bank only.
	var revoked string
	for _, s := range p.labelled {
		if p.authorizes(t, s, bank, at) {
			revoked = s
			break
		}
	}
	n, err := p.e.Consent.RevokeSubject(ctx, "steward", consent.Selector{IDType: ident.KindUSCC, Identifier: revoked, Grantee: bank}, "withdrawn")
	if err != nil || n == 0 {
		t.Fatal(n, err)
	}
	otherBank := others[0]
	if _, err := p.e.Consent.Grant(ctx, "steward", consent.Grant{IDType: ident.KindUSCC, Identifier: otherBank, Grantee: "bank-other",
		Purpose: consent.PurposeModelDevelopment, Items: []string{"tax_arrears_history"}, ValidFrom: "2026-01-01", ValidUntil: "2026-12-31",
		Evidence: "sha256=" + strings.Repeat("ab", 32)}); err != nil {
		t.Fatal(err)
	}
	srv := psi.NewServer(psi.DatasetSource{Datasets: p.e.Datasets, Consent: p.e.Consent}, psi.Options{Now: func() time.Time { return at }})
	intersect := func(bank string) []string {
		s, err := (&psi.Client{Transport: psi.Local{Server: srv, Bank: bank}}).Open(ctx, psi.Request{Dataset: p.dataset.Name, Purpose: consent.PurposeModelDevelopment})
		if err != nil {
			t.Fatal(err)
		}
		if s.Opened().DatasetVersion != uint32(p.dataset.Version) {
			t.Errorf("session on version %d", s.Opened().DatasetVersion)
		}
		res, err := s.Intersect(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, i := range res.Matched {
			got = append(got, ids[i])
		}
		return got
	}
	got := intersect(bank)
	onPlatform := map[string]bool{}
	for _, s := range p.subjects {
		onPlatform[s] = true
	}
	var want []string
	for _, s := range ids {
		if onPlatform[s] && p.authorizes(t, s, bank, at) {
			want = append(want, s)
		}
	}
	if !slices.Equal(got, want) || len(want) < 50 {
		t.Fatalf("found %d, want %d (of %d borrowers)", len(got), len(want), len(p.labelled))
	}
	if slices.Contains(got, revoked) || slices.Contains(got, otherBank) {
		t.Error("a subject that does not authorize the bank is found")
	}
	if got := intersect("bank-other"); !slices.Equal(got, []string{otherBank}) {
		t.Errorf("the other bank finds %d subjects, want its one", len(got))
	}
}
