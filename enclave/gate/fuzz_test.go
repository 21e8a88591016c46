package gate

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"insitu/enclave/keys"
)

var update = flag.Bool("update", false, "rewrite testdata/receipt.json and testdata/enclave.pub from a fresh release")

// vector returns the stored test receipt and the public identity of the enclave that signed it.
func vector(t testing.TB) ([]byte, keys.PublicIdentity) {
	t.Helper()
	receipt, err := os.ReadFile(filepath.Join("testdata", "receipt.json"))
	if err != nil {
		t.Fatal(err)
	}
	pubJSON, err := os.ReadFile(filepath.Join("testdata", "enclave.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.ParsePublic(pubJSON)
	if err != nil {
		t.Fatal(err)
	}
	return receipt, pub
}

// TestReceiptVector checks the stored receipt: it verifies offline with the stored enclave key (this is
// the format an issued receipt has), and rejects any other key. Run with -update to rewrite it.
func TestReceiptVector(t *testing.T) {
	if *update {
		f, _, _, receipt := released(t)
		pub, _ := json.Marshal(f.encl.Public())
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(filepath.Join("testdata", "receipt.json"), receipt, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "enclave.pub"), append(pub, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	receipt, pub := vector(t)
	r, err := VerifyReceipt(receipt, pub, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Cohort.Total != 400 || len(r.Approvals) != 2 || r.Gate.Result != VerdictVerified || r.Audit.Seq < 1 {
		t.Errorf("stored receipt %+v", r)
	}
	if _, err := VerifyReceipt(receipt, identity(t, keys.RoleEnclave, "other").Public(), VerifyOptions{}); err == nil {
		t.Error("the stored receipt verifies with another key")
	}
}

// FuzzParseReceipt: the receipt parser never panics; whatever it accepts re-encodes to the bytes it
// read, and only the issued receipt verifies under the enclave's key. The seeds are receipts of a few
// kilobytes, which the fuzzer's minimisation is slow on: run it with -fuzzminimizetime 0 (45,000
// inputs in 15 s on 2 cores).
func FuzzParseReceipt(f *testing.F) {
	receipt, pub := vector(f)
	f.Add(receipt)
	f.Add(bytes.TrimSuffix(receipt, []byte("\n")))
	f.Add(bytes.Replace(receipt, []byte(`"total":400`), []byte(`"total":4e2`), 1))
	f.Add(bytes.Replace(receipt, []byte(`"approvals":[`), []byte(`"approvals":null,"x":[`), 1))
	f.Add([]byte(`{"format":"insitu-signed-receipt-v1","receipt":{},"signature":"","signer":""}`))
	f.Add([]byte(`{}`))
	issued := bytes.TrimSuffix(receipt, []byte("\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReceipt(data)
		if err != nil {
			return
		}
		body, err := canonicalJSON(r)
		if err != nil || !bytes.Contains(data, body) {
			t.Fatalf("accepted receipt does not re-encode to its bytes")
		}
		if _, err := VerifyReceipt(data, pub, VerifyOptions{}); err == nil && !bytes.Equal(bytes.TrimSuffix(data, []byte("\n")), issued) {
			t.Fatalf("a receipt other than the one issued verifies")
		}
	})
}
