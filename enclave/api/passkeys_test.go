package api_test

import (
	"context"
	"testing"

	"insitu/enclave/api/client"
	"insitu/enclave/job"
)

// TestPasskeyEnrolmentThroughAPI: the steward fetches the request the console filed, checks it names
// them, signs and enrols it; another steward, a bank and a replayed enrolment get nowhere.
func TestPasskeyEnrolmentThroughAPI(t *testing.T) {
	f := newFixture(t, api0())
	ctx := context.Background()
	code, _ := passkeyRequest(t, f, asSteward)
	_, _, err := f.client(t, "steward2").PasskeyRequest(ctx, code)
	wantErr(t, "another steward fetches the request", err, client.ErrNotFound)
	_, _, err = f.client(t, asBank).PasskeyRequest(ctx, code)
	wantErr(t, "a bank fetches the request", err, client.ErrForbidden)

	s := f.client(t, asSteward)
	pr, st, err := s.PasskeyRequest(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if st.Party != "steward-1" || pr.Origin != "http://localhost:8443" || pr.Credential != job.CredentialString(st.CredentialID) {
		t.Fatalf("request %+v, statement %+v", pr, st)
	}
	// Another steward cannot enrol it, even with the statement in hand.
	_, err = f.client(t, "steward2").EnrollPasskey(ctx, pr)
	wantErr(t, "another steward enrols it", err, client.ErrForbidden)
	pk, err := s.EnrollPasskey(ctx, pr)
	if err != nil {
		t.Fatal(err)
	}
	if pk.Party != "steward-1" || pk.RPID != "localhost" {
		t.Fatalf("enrolled %+v", pk)
	}
	ks, err := f.e.Jobs.Passkeys(ctx, "steward-1")
	if err != nil || len(ks) != 1 {
		t.Fatalf("passkeys %v, %v", ks, err)
	}
	// The request is used up.
	_, err = s.EnrollPasskey(ctx, pr)
	wantErr(t, "the same request again", err, client.ErrNotFound)
}
