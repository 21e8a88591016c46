package api_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"insitu/connectors/ident"
	"insitu/enclave/api"
	"insitu/enclave/api/client"
	"insitu/enclave/consent"
	"insitu/enclave/psi"
)

// TestPSIOverTheAPI aligns bank A's borrowers with the platform over TLS: it finds exactly those
// that authorize it now, and another bank cannot continue its session.
func TestPSIOverTheAPI(t *testing.T) {
	f := newFixture(t, api0())
	ctx := context.Background()
	bank := f.ids[asBank].Name
	lf, err := os.Open(filepath.Join(f.synth, "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	file, err := psi.ReadIDs("labels.csv", lf, ident.KindUSCC)
	if err != nil {
		t.Fatal(err)
	}
	// Two borrowers authorize bank A from today on, so the intersection is not empty whatever the date.
	for i, id := range file.IDs[:2] {
		if _, err := f.e.Consent.Grant(ctx, "steward-1", consent.Grant{IDType: ident.KindUSCC, Identifier: id, Grantee: bank,
			Purpose: consent.PurposeModelDevelopment, Items: []string{"tax_arrears_history"}, ValidFrom: "2020-01-01",
			ValidUntil: "2099-12-31", Evidence: "psi-test.pdf#sha256=" + strings.Repeat(string("ab"[i]), 64)}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	var want []string
	for _, id := range file.IDs {
		as, err := f.e.Consent.List(ctx, consent.Filter{Grantee: bank, Purpose: consent.PurposeModelDevelopment, IDType: ident.KindUSCC,
			Identifier: id, Status: consent.StatusCurrent, At: now})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) > 0 {
			want = append(want, id)
		}
	}
	var phases []psi.Phase
	c := &psi.Client{Transport: client.PSITransport{Client: f.client(t, asBank)}, Progress: func(p psi.Progress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}}
	s, err := c.Open(ctx, psi.Request{Dataset: f.ds.Name, Purpose: consent.PurposeModelDevelopment})
	if err != nil {
		t.Fatal(err)
	}
	// Bank B cannot use bank A's session.
	other := client.PSITransport{Client: f.client(t, asOtherBank)}
	pull, _ := (&psi.Message{Type: psi.TypePull, Session: s.ID()}).MarshalBinary()
	if _, err := other.RoundTrip(ctx, pull); !errors.Is(err, psi.ErrSession) {
		t.Errorf("bank B pulls bank A's session: %v", err)
	}
	res, err := s.Intersect(ctx, file.IDs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range res.Matched {
		got = append(got, file.IDs[i])
	}
	if !slices.Equal(got, want) || len(got) < 2 {
		t.Fatalf("found %d borrowers, want %d", len(got), len(want))
	}
	if !slices.Equal(phases, []psi.Phase{psi.PhaseBlind, psi.PhaseMatch}) {
		t.Errorf("progress phases %v", phases)
	}
	// The session is closed: its messages are refused, as are malformed ones and unknown datasets.
	if _, err := (client.PSITransport{Client: f.client(t, asBank)}).RoundTrip(ctx, pull); !errors.Is(err, psi.ErrSession) {
		t.Errorf("pull on a closed session: %v", err)
	}
	if _, err := f.client(t, asBank).PSI(ctx, []byte("not a message")); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("garbage: %v", err)
	}
	if _, err := c.Open(ctx, psi.Request{Dataset: "nope", Purpose: consent.PurposeModelDevelopment}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("unknown dataset: %v", err)
	}
	if api.LimitPSI != psi.MaxMessageSize {
		t.Error("body limit")
	}
}
