package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestConsentGrantRevoke grants an authorization from the command line, revokes it by id, and
// revokes a subject's authorizations by subject; list shows each status, masked.
func TestConsentGrantRevoke(t *testing.T) {
	tmp := t.TempDir()
	flags := newEnclaveDir(t, tmp)
	codes := creditFixture(t, tmp, 0)
	ev := "auth-1.pdf#sha256=" + strings.Repeat("ab", 32)
	grant := func(code, purpose string) string {
		r := mustRun(t, tmp, nil, append([]string{"consent", "grant", "--id", code, "--grantee", "bank_a", "--purpose", purpose,
			"--items", "tax_arrears_history,water", "--from", "2026-01-01", "--until", "2099-12-31", "--evidence", ev}, flags...)...)
		m := regexp.MustCompile(`authorization (\d+): uscc (\S+) authorizes bank_a for ` + purpose + `, 2 items`).FindStringSubmatch(r.stdout)
		if m == nil || strings.Contains(r.stdout, code) {
			t.Fatalf("grant: %s", r)
		}
		return m[1]
	}
	id1 := grant(codes[0], "model_development")
	grant(codes[1], "credit_approval")
	grant(codes[1], "model_development")

	if r := insitu(t, tmp, nil, append([]string{"consent", "revoke", id1}, flags...)...); r.code != 2 || !strings.Contains(r.stderr, "--reason") {
		t.Fatalf("revoke without a reason: %s", r)
	}
	if r := mustRun(t, tmp, nil, append([]string{"consent", "revoke", id1, "--reason", "withdrawn"}, flags...)...); !strings.Contains(r.stdout, "authorization "+id1+" revoked (revoked)") {
		t.Fatalf("revoke by id: %s", r)
	}
	if r := mustRun(t, tmp, nil, append([]string{"consent", "revoke", "--subject", codes[1], "--purpose", "credit_approval", "--reason", "closed"}, flags...)...); !strings.Contains(r.stdout, "1 authorizations of") || strings.Contains(r.stdout, codes[1]) {
		t.Fatalf("revoke by subject: %s", r)
	}
	list := mustRun(t, tmp, nil, append([]string{"consent", "list"}, flags...)...)
	if strings.Count(list.stdout, "revoked") != 2 || strings.Count(list.stdout, "valid") != 1 || strings.Contains(list.stdout, codes[1]) {
		t.Fatalf("list after revocations:\n%s", list)
	}
	if r := insitu(t, tmp, nil, append([]string{"consent", "grant", "--id", "not-a-code", "--grantee", "bank_a", "--purpose", "model_development",
		"--items", "water", "--from", "2026-01-01", "--until", "2027-01-01", "--evidence", ev}, flags...)...); r.code == 0 || !strings.Contains(r.stderr, "id") {
		t.Fatalf("grant with an invalid credit code: %s", r)
	}
}
