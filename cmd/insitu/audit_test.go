package main

import (
	"database/sql"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// TestAuditedFlow ingests, imports authorizations and verifies the audit log; then it edits the
// state database behind the enclave's back and checks that verification names the change.
func TestAuditedFlow(t *testing.T) {
	tmp := t.TempDir()
	flags := newEnclaveDir(t, tmp)
	codes := creditFixture(t, tmp, 0)
	mustRun(t, tmp, nil, append([]string{"ingest", "-q", "--mapping", "tax.yaml", "--dataset", "tax", "--class", "platform"}, flags...)...)
	auth := "id_type,id,grantee,purpose,purpose_detail,items,valid_from,valid_until,evidence\n" +
		"uscc," + codes[0] + ",bank_a,model_development,scorecard,tax_arrears_history;water,2026-01-01,2027-12-31,auth-1.pdf#sha256=" + strings.Repeat("ab", 32) + "\n"
	writeFile(t, filepath.Join(tmp, "auth.csv"), auth)
	out := mustRun(t, tmp, nil, append([]string{"consent", "import", "auth.csv"}, flags...)...)
	if !strings.Contains(out.stdout, "1 rows, 1 authorizations added") {
		t.Fatalf("import: %s", out)
	}
	out = mustRun(t, tmp, nil, append([]string{"consent", "list"}, flags...)...)
	if strings.Contains(out.stdout, codes[0]) || !strings.Contains(out.stdout, codes[0][:4]+"**********"+codes[0][14:]) {
		t.Fatalf("list must mask identifiers:\n%s", out)
	}
	out = mustRun(t, tmp, nil, append([]string{"audit", "verify", "--checkpoint"}, flags...)...)
	m := regexp.MustCompile(`head (\d+:[0-9a-f]{64})`).FindStringSubmatch(out.stdout)
	if m == nil || !strings.Contains(out.stdout, "2 records") || !strings.Contains(out.stdout, "0 records after it") {
		t.Fatalf("verify: %s", out)
	}
	head := m[1]
	log := mustRun(t, tmp, nil, append([]string{"audit", "log"}, flags...)...)
	if !strings.Contains(log.stdout, "ingest") || !strings.Contains(log.stdout, "authorization_grant") ||
		strings.Contains(log.stdout, codes[0]) {
		t.Fatalf("log: %s", log)
	}

	// Rewrite the ingest record's payload directly in the database.
	db, err := sql.Open("sqlite", filepath.Join(tmp, "dd", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TRIGGER IF EXISTS audit_records_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_records SET payload = replace(payload, '"rows_rejected":0', '"rows_rejected":5') WHERE seq = 1`); err != nil {
		t.Skipf("schema differs from what this test edits: %v", err)
	}
	db.Close()
	res := insitu(t, tmp, nil, append([]string{"audit", "verify", "--head", head}, flags...)...)
	if res.code != 1 || !strings.Contains(res.stdout, "FAIL seq 1") {
		t.Fatalf("tampered log must fail verification at seq 1:\n%s", res)
	}
	if res := insitu(t, tmp, nil, append([]string{"audit", "verify", "--head", "x"}, flags...)...); res.code != 2 {
		t.Fatalf("malformed --head must be a usage error:\n%s", res)
	}
}
