package api_test

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"insitu/connectors/ident"
	"insitu/enclave/api"
	"insitu/enclave/consent"
	"insitu/enclave/job"
	"insitu/enclave/job/passkey"
	"insitu/enclave/job/passkey/passkeytest"
	"insitu/enclave/keys"
	"insitu/enclave/psi"
	"insitu/enclave/registry"
)

// roleState is what the route × role test shares between its cases.
type roleState struct {
	plugin, labels string
	jobA           string // bank A's job, left submitted
	pluginBytes    []byte
	sealed         []byte
	csvRow         []byte // the header and one row of the authorizations file
	grant          consent.Grant
	n              int
	model          servedModel // a registered model of bank A, whose first five subjects authorized bank A
}

func (st *roleState) next() int { st.n++; return st.n }

// routeCase builds the request of one route for one caller (it may set up state first) and says
// which status each kind of caller gets. Callers absent from want get 403 when registered and 401
// when not (unregistered, bad signature, replayed).
type routeCase struct {
	build func(t *testing.T, f *fixture, st *roleState, who string) (uri string, body []byte)
	want  map[string]int
}

func fixed(uri string) func(*testing.T, *fixture, *roleState, string) (string, []byte) {
	return func(*testing.T, *fixture, *roleState, string) (string, []byte) { return uri, nil }
}

// newJob submits a fresh job of bank A directly on the board.
func newJob(t *testing.T, f *fixture, st *roleState) (string, []byte) {
	t.Helper()
	m := f.manifest(t, f.ids[asBank].Name, st.plugin, st.labels, fmt.Sprintf("route test %d", st.next()))
	j, err := f.e.Jobs.Submit(context.Background(), signed(t, m, f.ids[asBank]), "case")
	if err != nil {
		t.Fatal(err)
	}
	return j.ID, job.ApprovalMessage(m)
}

func decision(t *testing.T, f *fixture, st *roleState, who, verb string) (string, []byte) {
	id, msg := newJob(t, f, st)
	signer := f.ids[who]
	var sig []byte
	var err error
	if verb == "approve" {
		sig, err = signer.Sign(msg, job.ApprovalContext)
	} else {
		j, gerr := f.e.Jobs.Get(context.Background(), id)
		if gerr != nil {
			t.Fatal(gerr)
		}
		sig, err = signer.Sign(job.RejectionMessage(j.Manifest, "too broad"), job.RejectionContext)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"signature": sig, "reason": map[string]string{"approve": "", "reject": "too broad"}[verb]})
	if verb == "approve" {
		body, _ = json.Marshal(map[string]any{"signature": sig})
	}
	return "/v1/jobs/" + id + "/" + verb, body
}

func freshGrant(st *roleState) consent.Grant {
	g := st.grant
	var b [32]byte
	rand.Read(b[:])
	g.Evidence = "route-test.pdf#sha256=" + hex.EncodeToString(b[:])
	return g
}

var all5 = func(bank, other, steward, researcher, admin int) map[string]int {
	return map[string]int{asBank: bank, asOtherBank: other, asSteward: steward, asResearcher: researcher, asAdmin: admin}
}

const (
	ok   = http.StatusOK
	made = http.StatusCreated
	none = http.StatusNoContent
	no   = http.StatusForbidden
	nf   = http.StatusNotFound
	conf = http.StatusConflict
)

// cases has one entry per route the router registers, by "METHOD pattern".
var cases = map[string]routeCase{
	"GET /healthz":   {fixed("/healthz"), map[string]int{asBank: ok, asOtherBank: ok, asSteward: ok, asResearcher: ok, asAdmin: ok, asUnreg: ok, asBadSig: ok, asReplayed: ok}},
	"GET /metrics":   {fixed("/metrics"), all5(no, no, ok, no, ok)},
	"GET /v1/whoami": {fixed("/v1/whoami"), all5(ok, ok, ok, ok, ok)},
	"POST /v1/parties": {func(t *testing.T, f *fixture, st *roleState, _ string) (string, []byte) {
		id, err := keys.NewIdentity(keys.RoleBank, fmt.Sprintf("new-party-%d", st.next()))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(id.Public())
		return "/v1/parties", b
	}, all5(no, no, no, no, made)},
	"GET /v1/parties": {fixed("/v1/parties"), all5(no, no, no, no, ok)},
	"DELETE /v1/parties/{name}": {func(t *testing.T, f *fixture, st *roleState, _ string) (string, []byte) {
		id, err := keys.NewIdentity(keys.RoleBank, fmt.Sprintf("old-party-%d", st.next()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.e.Jobs.AddParty(context.Background(), "test", id.Public()); err != nil {
			t.Fatal(err)
		}
		return "/v1/parties/" + id.Name, nil
	}, all5(no, no, no, no, none)},
	"GET /v1/settings": {fixed("/v1/settings"), all5(no, no, ok, no, ok)},
	"PUT /v1/settings/{key}": {func(*testing.T, *fixture, *roleState, string) (string, []byte) {
		return "/v1/settings/" + job.SettingMinCohort, []byte(`{"value":100}`)
	}, all5(no, no, ok, no, ok)},
	"GET /v1/budgets": {func(_ *testing.T, f *fixture, _ *roleState, _ string) (string, []byte) {
		return "/v1/budgets?bank=bank-a&dataset=" + f.ds.Name, nil
	}, all5(no, no, ok, no, ok)},
	"PUT /v1/budgets/{bank}/{dataset}": {func(_ *testing.T, f *fixture, _ *roleState, _ string) (string, []byte) {
		return "/v1/budgets/bank-a/" + f.ds.Name, []byte(`{"epsilon":12}`)
	}, all5(no, no, ok, no, ok)},
	"PUT /v1/budgets/min-count": {func(*testing.T, *fixture, *roleState, string) (string, []byte) {
		return "/v1/budgets/min-count", []byte(`{"min_count":10}`)
	}, all5(no, no, ok, no, ok)},
	"POST /v1/plugins": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		return "/v1/plugins?name=logreg", st.pluginBytes
	}, all5(ok, ok, no, ok, no)},
	"GET /v1/plugins": {fixed("/v1/plugins"), all5(ok, ok, ok, ok, no)},
	"POST /v1/labels": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		return "/v1/labels?name=labels.sealed", st.sealed
	}, all5(made, conf, no, conf, no)},
	"GET /v1/labels": {fixed("/v1/labels"), all5(ok, ok, no, ok, no)},
	"POST /v1/jobs": {func(t *testing.T, f *fixture, st *roleState, who string) (string, []byte) {
		detail := fmt.Sprintf("submit %d", st.next())
		// Bank A's manifest, whoever sends it: only bank A may submit it.
		return "/v1/jobs", signed(t, f.manifest(t, f.ids[asBank].Name, st.plugin, st.labels, detail), f.ids[asBank])
	}, all5(made, no, no, no, no)},
	"GET /v1/jobs": {fixed("/v1/jobs"), all5(ok, ok, ok, ok, no)},
	"GET /v1/jobs/{id}": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		return "/v1/jobs/" + st.jobA, nil
	}, all5(ok, nf, ok, nf, no)},
	"GET /v1/jobs/{id}/watch": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		return "/v1/jobs/" + st.jobA + "/watch?wait=0", nil
	}, all5(ok, nf, ok, nf, no)},
	"POST /v1/jobs/{id}/cancel": {func(t *testing.T, f *fixture, st *roleState, _ string) (string, []byte) {
		id, _ := newJob(t, f, st)
		return "/v1/jobs/" + id + "/cancel", []byte(`{"reason":"route test"}`)
	}, all5(ok, nf, ok, nf, no)},
	"GET /v1/jobs/{id}/result": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		return "/v1/jobs/" + st.jobA + "/result", nil
	}, all5(conf, nf, no, nf, no)},
	"GET /v1/jobs/{id}/receipt": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		return "/v1/jobs/" + st.jobA + "/receipt", nil
	}, all5(conf, nf, conf, nf, no)},
	"GET /v1/jobs/{id}/review": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		return "/v1/jobs/" + st.jobA + "/review", nil
	}, all5(no, no, ok, no, no)},
	"POST /v1/jobs/{id}/approve": {func(t *testing.T, f *fixture, st *roleState, who string) (string, []byte) {
		return decision(t, f, st, who, "approve")
	}, all5(no, no, ok, no, no)},
	"POST /v1/jobs/{id}/reject": {func(t *testing.T, f *fixture, st *roleState, who string) (string, []byte) {
		return decision(t, f, st, who, "reject")
	}, all5(no, no, ok, no, no)},
	"POST /v1/consent/import": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		return "/v1/consent/import?name=one.csv", st.csvRow
	}, all5(no, no, made, no, no)},
	"POST /v1/consent/grants": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		b, _ := json.Marshal(freshGrant(st))
		return "/v1/consent/grants", b
	}, all5(no, no, made, no, no)},
	"POST /v1/consent/{id}/revoke": {func(t *testing.T, f *fixture, st *roleState, _ string) (string, []byte) {
		a, err := f.e.Consent.Grant(context.Background(), "test", freshGrant(st))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("/v1/consent/%d/revoke", a.ID), []byte(`{"reason":"withdrawn"}`)
	}, all5(no, no, ok, no, no)},
	"GET /v1/consent":           {fixed("/v1/consent?limit=5"), all5(no, no, ok, no, no)},
	"GET /v1/consent/counts":    {fixed("/v1/consent/counts"), all5(ok, ok, ok, no, no)},
	"GET /v1/audit/records":     {fixed("/v1/audit/records?limit=3"), all5(no, no, ok, no, ok)},
	"POST /v1/audit/verify":     {fixed("/v1/audit/verify"), all5(no, no, ok, no, ok)},
	"POST /v1/audit/checkpoint": {fixed("/v1/audit/checkpoint"), all5(no, no, ok, no, ok)},
	"GET /v1/datasets":          {fixed("/v1/datasets"), all5(ok, ok, ok, ok, no)},
	"POST /v1/psi": {func(_ *testing.T, f *fixture, _ *roleState, _ string) (string, []byte) {
		b, _ := (&psi.Message{Type: psi.TypeOpen, Open: &psi.Open{Dataset: f.ds.Name, Purpose: string(consent.PurposeModelDevelopment)}}).MarshalBinary()
		return "/v1/psi", b
	}, all5(ok, ok, no, no, no)},
	"GET /v1/passkeys/requests/{code}": {func(t *testing.T, f *fixture, _ *roleState, _ string) (string, []byte) {
		code, _ := passkeyRequest(t, f, asSteward)
		return "/v1/passkeys/requests/" + code, nil
	}, all5(no, no, ok, no, nf)},
	"POST /v1/passkeys": {func(t *testing.T, f *fixture, _ *roleState, who string) (string, []byte) {
		owner := asSteward
		if who == asAdmin {
			owner = asAdmin
		}
		code, data := passkeyRequest(t, f, owner)
		sig, err := f.ids[owner].Sign(data, passkey.EnrolContext)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(api.EnrollPasskey{Code: code, Statement: data, Signature: sig})
		return "/v1/passkeys", b
	}, all5(no, no, made, no, made)},
	// The console's pages need no request signature: without a session they lead to the sign-in page.
	"GET /console/":  {fixed("/console/"), map[string]int{asBank: ok, asOtherBank: ok, asSteward: ok, asResearcher: ok, asAdmin: ok, asUnreg: ok, asBadSig: ok, asReplayed: ok}},
	"POST /console/": {fixed("/console/signout"), map[string]int{asBank: ok, asOtherBank: ok, asSteward: ok, asResearcher: ok, asAdmin: ok, asUnreg: ok, asBadSig: ok, asReplayed: ok}},
	"GET /v1/datasets/{name}/{version}": {func(_ *testing.T, f *fixture, _ *roleState, _ string) (string, []byte) {
		return fmt.Sprintf("/v1/datasets/%s/%d", f.ds.Name, f.ds.Version), nil
	}, all5(no, no, ok, no, no)},

	"GET /v1/models": {fixed("/v1/models"), all5(ok, ok, ok, no, no)},
	"GET /v1/models/{id}": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		return "/v1/models/" + st.model.id, nil
	}, all5(ok, nf, ok, no, no)},
	"GET /v1/models/{id}/export": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		return "/v1/models/" + st.model.id + "/export?format=pmml", nil
	}, all5(ok, nf, no, no, no)},
	"POST /v1/models/{id}/revoke": {func(t *testing.T, f *fixture, _ *roleState, _ string) (string, []byte) {
		return "/v1/models/" + registerModel(t, f, f.ids[asBank].Name).id + "/revoke", []byte(`{"reason":"route test"}`)
	}, all5(ok, nf, ok, no, no)},
	"POST /v1/models/{id}/monitor": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		return "/v1/models/" + st.model.id + "/monitor", []byte(`{"bins":1}`) // refused as invalid once the model is found
	}, all5(http.StatusBadRequest, nf, http.StatusBadRequest, no, no)},
	"POST /v1/score": {func(_ *testing.T, _ *fixture, st *roleState, _ string) (string, []byte) {
		b, _ := json.Marshal(map[string]any{"model": st.model.id, "purpose": "credit_approval", "subjects": st.model.table.Subjects[:2]})
		return "/v1/score", b
	}, all5(ok, nf, no, no, no)},
	"POST /v1/verify": {func(t *testing.T, f *fixture, st *roleState, _ string) (string, []byte) {
		b, _ := json.Marshal(map[string]any{"field": "innovation_evaluation.tech_sme", "purpose": "credit_approval",
			"subject": st.model.table.Subjects[st.next()%5], "claim": "true"})
		return "/v1/verify", b
	}, all5(ok, no, no, no, no)},
	"GET /v1/serving/settings": {fixed("/v1/serving/settings"), all5(no, no, ok, no, no)},
	"PUT /v1/serving/settings/{key}": {func(*testing.T, *fixture, *roleState, string) (string, []byte) {
		return "/v1/serving/settings/" + registry.SettingMinFeatures, []byte(`{"value":3}`)
	}, all5(no, no, ok, no, no)},
}

// passkeyRequest files a passkey request for the party labelled who, as the console does after the
// browser registered a credential, and returns its code and the statement to sign.
func passkeyRequest(t *testing.T, f *fixture, who string) (string, []byte) {
	t.Helper()
	a := passkeytest.New("localhost", "http://localhost:8443")
	code, err := f.e.Jobs.RequestPasskey(context.Background(), a.Statement(f.ids[who].Public()))
	if err != nil {
		t.Fatal(err)
	}
	_, data, err := f.e.Jobs.PasskeyRequest(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	return code, data
}

// TestRouteRoleTable calls every route the router registered as every kind of caller and checks the
// status. The routes come from the server, so a route added without a case here fails the test.
func TestRouteRoleTable(t *testing.T) {
	f := newFixture(t, api0())
	ctx := context.Background()
	st := &roleState{}
	var err error
	if st.pluginBytes, err = os.ReadFile(pluginBin); err != nil {
		t.Fatal(err)
	}
	st.plugin = f.uploadPlugin(t, f.client(t, asBank))
	st.sealed = f.sealedLabels(t)
	li, err := f.client(t, asBank).UploadLabels(ctx, "labels.sealed", st.sealed)
	if err != nil {
		t.Fatal(err)
	}
	st.labels = li.Digest
	st.jobA, _ = newJob(t, f, st)
	raw, err := os.ReadFile(filepath.Join(f.synth, "authorizations.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(raw), "\n", 3)
	st.csvRow = []byte(lines[0] + "\n" + lines[1] + "\n")
	rec, err := csv.NewReader(strings.NewReader(string(st.csvRow))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]string{}
	for i, h := range rec[0] {
		col[h] = rec[1][i]
	}
	st.grant = consent.Grant{IDType: ident.Kind(col["id_type"]), Identifier: col["id"], Grantee: col["grantee"],
		Purpose: consent.Purpose(col["purpose"]), PurposeDetail: col["purpose_detail"], Items: strings.Split(col["items"], ";"),
		ValidFrom: col["valid_from"], ValidUntil: col["valid_until"]}

	st.model = registerModel(t, f, f.ids[asBank].Name)
	for _, s := range st.model.table.Subjects[:5] {
		grantFor(t, f, s, f.ids[asBank].Name, consent.PurposeCreditApproval, append(append([]string(nil), st.model.doc.Items...), "innovation_evaluation"))
	}

	seen := map[string]bool{}
	for _, rt := range f.srv.Registered() {
		key := rt.Method + " " + rt.Pattern
		seen[key] = true
		c, okc := cases[key]
		if !okc {
			t.Errorf("route %s has no case in the route × role table: add one", key)
			continue
		}
		for _, who := range callers {
			want, listed := c.want[who]
			if !listed {
				want = http.StatusUnauthorized
			}
			t.Run(strings.ReplaceAll(key, "/", "_")+"/"+who, func(t *testing.T) {
				uri, body := c.build(t, f, st, who)
				req := f.request(t, f.ids[who], rt.Method, uri, body, time.Now())
				got, code := f.do(t, req, body)
				if who == asReplayed && !rt.Public() {
					got, code = f.do(t, req, body) // the same signed request again
				}
				if got != want {
					t.Errorf("%s %s as %s: status %d (%s), want %d", rt.Method, uri, who, got, code, want)
				}
			})
		}
	}
	for key := range cases {
		if !seen[key] {
			t.Errorf("the table has a case for %s, which the router does not register", key)
		}
	}
}
