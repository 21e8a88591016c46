package gate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"insitu/enclave/job"
	"insitu/enclave/keys"
	"insitu/enclave/store/storetest"
)

// released returns a fixture with one released job and its receipt.
func released(t testing.TB) (*fixture, *job.Job, []byte, []byte) {
	t.Helper()
	f := newFixture(t, Options{})
	j, st := f.succeededJob(t, jobSpec{})
	e := cohort(9, 300, 100)
	opt := optimum(t, e, 1)
	if _, err := f.gate.Release(context.Background(), f.request(j, st, e, weightsOutput(e, opt.Weights, opt.Intercept))); err != nil {
		t.Fatal(err)
	}
	sealed, receipt, err := f.gate.Result(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	return f, j, sealed, receipt
}

// resign rewrites the receipt's body with edit and signs it again with id, as an enclave (or a thief
// of its key) would.
func resign(t *testing.T, receipt []byte, id *keys.Identity, edit func(r *Receipt)) []byte {
	t.Helper()
	r, err := ParseReceipt(receipt)
	if err != nil {
		t.Fatal(err)
	}
	edit(r)
	out, err := signReceipt(r, id)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReceiptVerification(t *testing.T) {
	f, j, sealed, receipt := released(t)
	stewards := []keys.PublicIdentity{f.steward.Public(), f.steward2.Public()}
	encl := f.encl.Public()
	if _, err := VerifyReceipt(receipt, encl, VerifyOptions{Stewards: stewards}); err != nil {
		t.Fatal(err)
	}
	// Without steward keys the approvals are not checked; with one steward's key and the receipt's
	// quorum of 2 the check fails, with MinApprovals 1 it passes.
	if _, err := VerifyReceipt(receipt, encl, VerifyOptions{}); err != nil {
		t.Errorf("no steward keys: %v", err)
	}
	if _, err := VerifyReceipt(receipt, encl, VerifyOptions{Stewards: stewards[:1]}); !errors.Is(err, ErrReceipt) {
		t.Errorf("one steward key for a quorum of 2: %v", err)
	}
	if _, err := VerifyReceipt(receipt, encl, VerifyOptions{Stewards: stewards[:1], MinApprovals: 1}); err != nil {
		t.Errorf("one steward key, MinApprovals 1: %v", err)
	}

	var env map[string]json.RawMessage
	json.Unmarshal(receipt, &env)
	body := env["receipt"]
	cases := []struct {
		name string
		data []byte
		key  keys.PublicIdentity
	}{
		{"cohort changed", bytes.Replace(receipt, []byte(`"total":400`), []byte(`"total":401`), 1), encl},
		{"job changed", bytes.Replace(receipt, []byte(j.ID), []byte("job-0000000000000000"), 1), encl},
		{"signature flipped", func() []byte {
			sig, _ := base64.StdEncoding.DecodeString(string(bytes.Trim(env["signature"], `"`)))
			sig[10] ^= 1
			return bytes.Replace(receipt, bytes.Trim(env["signature"], `"`), []byte(base64.StdEncoding.EncodeToString(sig)), 1)
		}(), encl},
		{"another enclave", receipt, identity(t, keys.RoleEnclave, "other").Public()},
		{"forged approval", resign(t, receipt, f.encl, func(r *Receipt) {
			r.Approvals[1].Signature = r.Approvals[0].Signature
		}), encl},
		{"approval of another manifest", resign(t, receipt, f.encl, func(r *Receipt) {
			r.ManifestHash = "sha256:" + sha256Hex([]byte("another manifest"))
		}), encl},
		{"signed by another key", resign(t, receipt, identity(t, keys.RoleEnclave, "other"), func(r *Receipt) {}), encl},
		{"whitespace", bytes.Replace(receipt, []byte(`,"signature"`), []byte(`, "signature"`), 1), encl},
		{"unknown key", bytes.Replace(receipt, []byte(`{"format"`), []byte(`{"extra":1,"format"`), 1), encl},
		{"body not canonical", bytes.Replace(receipt, body, bytes.Replace(body, []byte(`{"approvals"`), []byte(`{ "approvals"`), 1), 1), encl},
		{"truncated", receipt[:len(receipt)/2], encl},
	}
	for _, c := range cases {
		if _, err := VerifyReceipt(c.data, c.key, VerifyOptions{Stewards: stewards}); !errors.Is(err, ErrReceipt) {
			t.Errorf("%s: %v, want ErrReceipt", c.name, err)
		}
	}

	// A receipt re-signed with other output hashes verifies as a receipt but not against the result.
	other := resign(t, receipt, f.encl, func(r *Receipt) { r.Outputs.Scores = sha256Hex([]byte("x")) })
	vr, err := VerifyReceipt(other, encl, VerifyOptions{Stewards: stewards})
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenResult(sealed, f.bank)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(vr); !errors.Is(err, ErrResult) {
		t.Errorf("bundle against a receipt with other hashes: %v", err)
	}
	// A sealed result changed in transit does not open.
	bad := bytes.Clone(sealed)
	bad[len(bad)-3] ^= 1
	if _, err := OpenResult(bad, f.bank); !errors.Is(err, ErrResult) {
		t.Errorf("changed sealed result: %v", err)
	}
}

func TestCommitFailureReleasesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	j, st := f.succeededJob(t, jobSpec{})
	e := cohort(10, 300, 100)
	opt := optimum(t, e, 1)
	req := f.request(j, st, e, weightsOutput(e, opt.Weights, opt.Intercept))
	head, _ := f.log.Head(ctx)

	f.faulty.Fail(1, storetest.FailCommit)
	if _, err := f.gate.Release(ctx, req); !errors.Is(err, storetest.ErrInjected) {
		t.Fatalf("release with a failing commit: %v", err)
	}
	if jj, _ := f.board.Get(ctx, j.ID); jj.State != job.Succeeded {
		t.Errorf("job is %s after a failed commit", jj.State)
	}
	if _, _, err := f.gate.Result(ctx, j.ID); !errors.Is(err, ErrNotReleased) {
		t.Errorf("Result after a failed commit: %v", err)
	}
	if h, _ := f.log.Head(ctx); h != head {
		t.Errorf("audit head moved from %v to %v", head, h)
	}

	// The commit happens but is reported failed: the release stands, with its files.
	f.faulty.Fail(1, storetest.FailAfterCommit)
	rec, err := f.gate.Release(ctx, req)
	if err != nil {
		t.Fatalf("release whose commit was reported failed after it happened: %v", err)
	}
	_, receipt, err := f.gate.Result(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := VerifyReceipt(receipt, f.encl.Public(), VerifyOptions{})
	if err != nil || vr.Audit != rec.Audit {
		t.Errorf("receipt %v %+v", err, vr)
	}
}
