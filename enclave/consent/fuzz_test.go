package consent_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"insitu/connectors/catalog"
	"insitu/connectors/ident"
	"insitu/enclave/consent"
)

// alnumRun finds maximal runs of ASCII letters and digits: an identifier is one of 18.
var alnumRun = regexp.MustCompile(`[0-9A-Za-z]+`)

// FuzzParseAuthorizations checks, seeded from the test files, that the parser never panics, that
// every row it accepts is valid and canonical (parsing it again gives the same grant), that every
// error names where it is, and that no error shows an identifier in full (a run of exactly 18 letters and digits that is a
// valid credit code or resident identity number).
func FuzzParseAuthorizations(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.csv"))
	if err != nil || len(files) == 0 {
		f.Fatal("no test files", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\uFEFFid_type,id,grantee,purpose,purpose_detail,items,valid_from,valid_until,evidence\n"))
	cat := catalog.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := consent.ParseAuthorizations("fuzz.csv", bytes.NewReader(data), cat)
		if err != nil {
			var ie *consent.ImportError
			if !errors.As(err, &ie) || len(ie.Rows) == 0 || ie.Total < len(ie.Rows) || !errors.Is(err, consent.ErrInvalid) {
				t.Fatalf("error %v is not an *ImportError with rows", err)
			}
			text := err.Error()
			for _, r := range ie.Rows {
				if r.File != "fuzz.csv" || r.Rule == "" || r.Row < 0 || (r.Row > 0 && r.Line < 2) {
					t.Fatalf("row error without a place: %+v", r)
				}
				text += r.Error()
			}
			for _, tok := range alnumRun.FindAllString(text, -1) {
				if len(tok) != 18 {
					continue
				}
				if ident.Validate(ident.KindUSCC, tok) == nil || ident.Validate(ident.KindResidentID, tok) == nil {
					t.Fatalf("an error shows the identifier %s: %s", tok, text)
				}
			}
			return
		}
		for i, r := range rows {
			if r.Row != int64(i+1) || r.Line < 2 {
				t.Fatalf("row %d numbered %d at line %d", i+1, r.Row, r.Line)
			}
			g := r.Grant
			if c, err := ident.Normalize(g.IDType, g.Identifier); err != nil || c != g.Identifier {
				t.Fatalf("row %d: identifier not canonical", r.Row)
			}
			var buf strings.Builder
			buf.WriteString(strings.Join(consent.Header, ",") + "\n")
			for j, v := range []string{string(g.IDType), g.Identifier, g.Grantee, string(g.Purpose), g.PurposeDetail, strings.Join(g.Items, ";"), g.ValidFrom, g.ValidUntil, g.Evidence} {
				if j > 0 {
					buf.WriteByte(',')
				}
				buf.WriteString(`"` + strings.ReplaceAll(v, `"`, `""`) + `"`)
			}
			buf.WriteByte('\n')
			again, err := consent.ParseAuthorizations("again.csv", strings.NewReader(buf.String()), cat)
			if err != nil || len(again) != 1 || !grantsEqual(again[0].Grant, g) {
				t.Fatalf("row %d does not parse back to itself: %v", r.Row, err)
			}
		}
	})
}

func grantsEqual(a, b consent.Grant) bool {
	return a.IDType == b.IDType && a.Identifier == b.Identifier && a.Grantee == b.Grantee && a.Purpose == b.Purpose &&
		a.PurposeDetail == b.PurposeDetail && strings.Join(a.Items, ";") == strings.Join(b.Items, ";") &&
		a.ValidFrom == b.ValidFrom && a.ValidUntil == b.ValidUntil && a.Evidence == b.Evidence
}
