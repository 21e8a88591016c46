package consent_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"insitu/connectors/catalog"
	"insitu/connectors/ident"
	"insitu/connectors/synthetic"
	"insitu/enclave/audit"
	"insitu/enclave/consent"
	"insitu/enclave/store/storetest"
)

func TestHeaderMatchesTheGenerator(t *testing.T) {
	if !slices.Equal(consent.Header, synthetic.AuthorizationHeader) {
		t.Fatalf("Header %v, the generator writes %v", consent.Header, synthetic.AuthorizationHeader)
	}
	for _, p := range []string{synthetic.PurposePreScreening, synthetic.PurposeCreditApproval, synthetic.PurposePostLoanMonitoring, synthetic.PurposeModelDevelopment} {
		if _, err := consent.ParsePurpose(p); err != nil {
			t.Error(err)
		}
	}
}

func TestParseValid(t *testing.T) {
	for _, name := range []string{"valid.csv", "reordered.csv"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := consent.ParseAuthorizations(name, bytes.NewReader(b), catalog.Default())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "reordered.csv" {
			if len(rows) != 1 || rows[0].Grant.Purpose != consent.PurposePreScreening || rows[0].Grant.PurposeDetail != "pre-screening" {
				t.Errorf("%s: %+v", name, rows)
			}
			continue
		}
		if len(rows) != 4 {
			t.Fatalf("%s: %d rows", name, len(rows))
		}
		// Lines count the header and the line break inside row 4's quoted detail.
		for i, want := range []int64{2, 3, 4, 5} {
			if rows[i].Line != want || rows[i].Row != int64(i+1) {
				t.Errorf("row %d at line %d, want %d", rows[i].Row, rows[i].Line, want)
			}
		}
		g := rows[1].Grant
		if g.Identifier != "91350100HGA6EMBJ6Q" || g.PurposeDetail != "credit approval, business loan" || g.Purpose != consent.PurposeCreditApproval {
			t.Errorf("row 2: %+v", g)
		}
		g = rows[2].Grant
		if !slices.Equal(g.Items, []string{"tax_arrears_history", "financial_filings"}) || g.Evidence != "sha256="+strings.Repeat("a", 64) || g.PurposeDetail != "" {
			t.Errorf("row 3: %+v", g)
		}
		if g := rows[3].Grant; g.IDType != ident.KindResidentID || g.PurposeDetail != "detail with a\nline break" {
			t.Errorf("row 4: %+v", g)
		}
	}
}

func TestParseErrors(t *testing.T) {
	type want struct {
		line, row    int64
		column, rule string
	}
	for _, tc := range []struct {
		file string
		want []want
	}{
		{"invalid.csv", []want{
			{2, 1, "id", ident.RuleCheck},
			{3, 2, "grantee", consent.RuleGrantee},
			{4, 3, "purpose", consent.RulePurpose},
			{6, 4, "items", consent.RuleItems},
			{7, 5, "valid_from", consent.RuleDate},
			{8, 6, "valid_until", consent.RuleValidity},
			{9, 7, "evidence", consent.RuleEvidence},
			{10, 8, "", consent.RuleFieldCount},
			{11, 9, "id", ident.RuleCheck},
			{12, 10, "id_type", consent.RuleIDType},
			{13, 11, "items", consent.RuleItems},
		}},
		{"bad-header.csv", []want{
			{1, 0, "bank", consent.RuleHeader},
			{1, 0, "evidence", consent.RuleHeader},
			{1, 0, "grantee", consent.RuleHeader},
		}},
		{"broken-quote.csv", []want{{2, 1, "", consent.RuleCSV}}},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		_, err = consent.ParseAuthorizations(tc.file, bytes.NewReader(b), catalog.Default())
		var ie *consent.ImportError
		if !errors.As(err, &ie) || !errors.Is(err, consent.ErrInvalid) {
			t.Fatalf("%s: %v", tc.file, err)
		}
		var got []want
		for _, r := range ie.Rows {
			got = append(got, want{r.Line, r.Row, r.Column, r.Rule})
			if r.File != tc.file || r.Message == "" {
				t.Errorf("%s: %+v", tc.file, r)
			}
		}
		if !slices.Equal(got, tc.want) || ie.Total != len(tc.want) {
			t.Errorf("%s: errors\n got %v\nwant %v", tc.file, got, tc.want)
		}
		// No identifier of the file appears in full in the errors.
		for _, id := range []string{"91350100X0P479R6D8", "350102198005175842", "91350100HGA6EMBJ6Q"} {
			if strings.Contains(err.Error(), id) {
				t.Errorf("%s: error shows %s", tc.file, id)
			}
			for _, r := range ie.Rows {
				if strings.Contains(r.Error(), id) {
					t.Errorf("%s: row error shows %s: %v", tc.file, id, r)
				}
			}
		}
	}
	msg := (&consent.RowError{File: "a.csv", Line: 4, Row: 3, Column: "purpose", Rule: "purpose", Value: "marketing", Message: "not a purpose", Hint: "use one of …"}).Error()
	if msg != `a.csv: line 4 (data row 3), column "purpose": value "marketing": not a purpose (rule purpose); use one of …` {
		t.Errorf("message %q", msg)
	}
	if _, err := consent.ParseAuthorizations("empty.csv", strings.NewReader(""), catalog.Default()); !errors.Is(err, consent.ErrInvalid) {
		t.Errorf("empty file: %v", err)
	}
}

func TestImportIsAllOrNothing(t *testing.T) {
	f := newFixture(t)
	valid, _ := os.ReadFile(filepath.Join("testdata", "valid.csv"))
	// The valid rows plus one bad row at the end: nothing is recorded.
	bad := append(slices.Clone(valid), []byte("uscc,91350100MUK9MAG1Y8,bank-a,model_development,,water;nope,2026-01-01,2026-12-31,sha256="+strings.Repeat("9", 64)+"\n")...)
	_, err := f.reg.Import(ctx, "steward-1", "mixed.csv", bytes.NewReader(bad))
	var ie *consent.ImportError
	if !errors.As(err, &ie) || ie.Total != 1 || ie.Rows[0].Row != 5 || ie.Rows[0].Line != 7 {
		t.Fatalf("import with a bad last row: %v", err)
	}
	if list, _ := f.reg.List(ctx, consent.Filter{}); len(list) != 0 || len(auditRecords(t, f)) != 0 {
		t.Fatalf("a refused import left %d authorizations", len(list))
	}
	// A row conflicting with an earlier row of the same file: nothing is recorded either.
	conflict := append(slices.Clone(valid), []byte("uscc,91350100X0P479R6D7,bank-a,model_development,other detail,tax_arrears_history,2026-01-01,2027-12-31,auth-000001.pdf#sha256="+strings.Repeat("1", 64)+"\n")...)
	_, err = f.reg.Import(ctx, "steward-1", "conflict.csv", bytes.NewReader(conflict))
	if !errors.As(err, &ie) || ie.Total != 1 || ie.Rows[0].Rule != consent.RuleConflict || ie.Rows[0].Row != 5 {
		t.Fatalf("import with a conflicting row: %v", err)
	}
	if list, _ := f.reg.List(ctx, consent.Filter{}); len(list) != 0 {
		t.Fatalf("a conflicting import left %d authorizations", len(list))
	}
	// A failure at commit leaves nothing.
	faulty := storetest.NewFaulty(f.db)
	reg := consent.New(faulty, audit.New(faulty, enclaveID(), audit.Options{Now: f.clock.Now}), consent.Options{Now: f.clock.Now})
	faulty.Fail(1, storetest.FailCommit)
	if _, err := reg.Import(ctx, "steward-1", "valid.csv", bytes.NewReader(valid)); !errors.Is(err, storetest.ErrInjected) {
		t.Fatalf("import with a failing commit: %v", err)
	}
	if list, _ := f.reg.List(ctx, consent.Filter{}); len(list) != 0 || len(auditRecords(t, f)) != 0 {
		t.Fatalf("a failed commit left %d authorizations", len(list))
	}

	res, err := f.reg.Import(ctx, "steward-1", "valid.csv", bytes.NewReader(valid))
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 4 || res.Added != 4 || res.Unchanged != 0 || res.FirstID != 1 || res.LastID != 4 || res.AuditSeq != 1 {
		t.Errorf("import %+v", res)
	}
	list, _ := f.reg.List(ctx, consent.Filter{})
	if len(list) != 4 || list[3].Source != "import valid.csv data row 4" || list[3].Subject != ident.Mask("350102198005175841") {
		t.Errorf("list %+v", list)
	}
	again, err := f.reg.Import(ctx, "steward-1", "valid.csv", bytes.NewReader(valid))
	if err != nil || again.Added != 0 || again.Unchanged != 4 {
		t.Errorf("second import %+v, %v", again, err)
	}
	recs := auditRecords(t, f)
	if len(recs) != 2 || recs[0].Subject != "import/valid.csv" {
		t.Fatalf("audit records %+v", recs)
	}
	var p struct {
		Added     int            `json:"added"`
		Unchanged int            `json:"unchanged"`
		FileSHA   string         `json:"file_sha256"`
		ByGrantee map[string]int `json:"by_grantee"`
	}
	json.Unmarshal(recs[0].Payload, &p)
	if p.Added != 4 || p.FileSHA != res.SHA256 || p.ByGrantee["bank-a"] != 3 || p.ByGrantee["bank-b"] != 1 {
		t.Errorf("audit payload %s", recs[0].Payload)
	}
	for _, id := range []string{"91350100X0P479R6D7", "350102198005175841"} {
		if bytes.Contains(recs[0].Payload, []byte(id)) {
			t.Errorf("audit payload holds %s", id)
		}
	}
}

// The generator's authorizations import as they are, and the cohort of its labelled subjects is
// what an independent reading of the file says.
func TestImportSyntheticAndCohort(t *testing.T) {
	dir := t.TempDir()
	sum, err := synthetic.Generate(synthetic.Config{Enterprises: 400, Seed: 5}, dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	file, err := os.Open(filepath.Join(dir, "authorizations.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	res, err := f.reg.Import(ctx, "steward-1", "authorizations.csv", file)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != sum.Authorizations || res.Unchanged != 0 {
		t.Fatalf("imported %+v, the generator wrote %d", res, sum.Authorizations)
	}
	labels := readCSV(t, filepath.Join(dir, "labels.csv"))
	var labelled []string
	for _, l := range labels {
		labelled = append(labelled, l[0])
	}
	auths := readCSV(t, filepath.Join(dir, "authorizations.csv"))
	asOf := synthetic.DefaultAsOf.Format(time.DateOnly)
	items, _ := consent.NeedingAuthorization(catalog.Default(), strings.Split(auths[0][5], ";"))
	covered := map[string]bool{}
	for _, a := range auths {
		have := strings.Split(a[5], ";")
		ok := a[2] == synthetic.DefaultBank && a[3] == synthetic.PurposeModelDevelopment && a[6] <= asOf && asOf <= a[7]
		for _, it := range items {
			ok = ok && slices.Contains(have, it)
		}
		if ok {
			covered[a[1]] = true
		}
	}
	var want []string
	for _, s := range labelled {
		if covered[s] {
			want = append(want, s)
		}
	}
	q := consent.CohortQuery{IDType: ident.KindUSCC, Grantee: synthetic.DefaultBank, Purpose: consent.PurposeModelDevelopment,
		Items: items, At: synthetic.DefaultAsOf.Add(12 * time.Hour)}
	kept, lost, err := f.reg.Cohort(ctx, q, slices.Values(labelled))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kept, want) || len(kept) == 0 {
		t.Errorf("cohort of %d, the file says %d", len(kept), len(want))
	}
	total := len(kept)
	for _, n := range lost {
		total += n
	}
	if total != len(labelled) || lost[consent.ReasonOtherPurpose] == 0 || lost[consent.ReasonNoAuthorization] == 0 {
		t.Errorf("kept %d, lost %v, of %d labelled", len(kept), lost, len(labelled))
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	recs, err := csv.NewReader(file).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs[1:]
}

// An identifier typed into a file name, an evidence name or free text is masked wherever the
// registry reports it, and never reaches the audit log.
func TestIdentifiersInFreeTextAreMasked(t *testing.T) {
	f := newFixture(t)
	s := subjects(1)[0]
	row := "uscc," + s + ",bank-a,model_development,for " + s + ",tax_arrears_history,2026-01-01,2026-12-31," + s + ".pdf#sha256=" + strings.Repeat("7", 64) + "\n"
	res, err := f.reg.Import(ctx, "steward-1", s+".csv", strings.NewReader(strings.Join(consent.Header, ",")+"\n"+row))
	if err != nil || res.Added != 1 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	a, err := f.reg.Revoke(ctx, "steward-1", res.FirstID, "asked by "+s)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(a)
	if strings.Contains(string(out), s) || !strings.Contains(string(out), ident.Mask(s)+".pdf") {
		t.Errorf("authorization shows the identifier: %s", out)
	}
	for _, r := range auditRecords(t, f) {
		if strings.Contains(r.Subject, s) || bytes.Contains(r.Payload, []byte(s)) {
			t.Errorf("audit record %d holds the identifier: %s %s", r.Seq, r.Subject, r.Payload)
		}
	}
}
