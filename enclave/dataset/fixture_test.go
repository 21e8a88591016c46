package dataset

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"insitu/connectors"
	"insitu/connectors/ident"
	"insitu/enclave/keys"
)

// fixture is a two-source dataset spec in a temporary folder: "tax" (subjects 0..nTax-1) and
// "court" (subjects from nTax/2 on, nCourt of them), so that the sources overlap by half.
type fixture struct {
	dir      string
	spec     string
	subjects []string
	tax      map[string][]string // subject → arrears, count, date, outstanding, grade as written
	court    map[string][]string // subject → listed, cases, amount
}

func usccs(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 7))
	seen := map[string]bool{}
	out := make([]string, 0, n)
	for len(out) < n {
		c := ident.NewUSCC(rng, "330106")
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

const taxMapping = `source: tax
provider: zhejiang_tax_bureau
provider_name: 浙江省税务局
format: csv
path: tax.csv
subject: {column: credit_code, kind: uscc}
columns:
  - {column: arrears, field: tax_arrears_history.arrears_amount_24m}
  - {column: episodes, field: tax_arrears_history.arrears_count_24m}
  - {column: latest, field: tax_arrears_history.latest_arrears_date}
  - {column: outstanding, field: tax_arrears_history.arrears_outstanding}
  - {column: grade, field: tax_arrears_history.tax_credit_grade}
`

const courtMapping = `source: court
provider: zhejiang_high_court
format: csv
path: court.csv
subject: {column: code, kind: uscc}
columns:
  - {column: listed, field: dishonest_judgment_debtors.is_listed}
  - {column: cases, field: dishonest_judgment_debtors.case_count}
  - {column: amount, field: dishonest_judgment_debtors.amount_outstanding}
`

// newFixture writes the fixture. bad, when > 0, makes the tax source's data row bad hold an invalid
// credit code (its check character changed).
func newFixture(t testing.TB, nTax, nCourt int, bad int) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, tax: map[string][]string{}, court: map[string][]string{}}
	f.subjects = usccs(max(nTax, nTax/2+nCourt), 11)
	rng := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	b.WriteString("credit_code,arrears,episodes,latest,outstanding,grade\n")
	grades := []string{"A", "B", "M", "C", "D"}
	for i := range nTax {
		s := f.subjects[i]
		row := []string{
			fmt.Sprintf("%.2f", rng.Float64()*1e5),
			fmt.Sprint(rng.IntN(5)),
			fmt.Sprintf("2023-%02d-%02d", 1+rng.IntN(12), 1+rng.IntN(28)),
			[]string{"true", "false"}[rng.IntN(2)],
			grades[rng.IntN(5)],
		}
		if i%7 == 3 {
			row[0] = "" // missing arrears
		}
		code := s
		if i+1 == bad {
			code = s[:17] + string("0123456789ABCDEFGHJKLMNPQRTUWXY"[(strings.IndexByte("0123456789ABCDEFGHJKLMNPQRTUWXY", s[17])+1)%31])
		} else {
			f.tax[s] = row
		}
		b.WriteString(code + "," + strings.Join(row, ",") + "\n")
	}
	write(t, filepath.Join(dir, "tax.csv"), b.String())
	b.Reset()
	b.WriteString("code,listed,cases,amount\n")
	for i := range nCourt {
		s := f.subjects[nTax/2+i]
		row := []string{[]string{"是", "否"}[rng.IntN(2)], fmt.Sprint(rng.IntN(3)), fmt.Sprint(rng.IntN(100000))}
		f.court[s] = row
		b.WriteString(s + "," + strings.Join(row, ",") + "\n")
	}
	write(t, filepath.Join(dir, "court.csv"), b.String())
	write(t, filepath.Join(dir, "tax.yaml"), taxMapping)
	write(t, filepath.Join(dir, "court.yaml"), courtMapping)
	f.spec = filepath.Join(dir, "spec.yaml")
	write(t, f.spec, "dataset: credit\nclass: synthetic\nsubject: uscc\ndescription: test fixture\nmappings: [tax.yaml, court.yaml]\n")
	return f
}

func write(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) load(t testing.TB) (*connectors.DatasetSpec, []*connectors.Mapping) {
	t.Helper()
	spec, maps, err := connectors.LoadDatasetSpec(f.spec)
	if err != nil {
		t.Fatal(err)
	}
	return spec, maps
}

func testMaster(b byte) *keys.MasterKey {
	k := make([]byte, keys.Size)
	for i := range k {
		k[i] = b
	}
	return keys.FromBytes(k)
}

// newTestStore returns a store in a temporary folder and that folder.
func newTestStore(t testing.TB) (*Store, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "datasets")
	st, err := NewDirStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	return New(st, testMaster(1)), root
}

func ingest(t testing.TB, s *Store, f *fixture, opts IngestOptions) (*Manifest, *connectors.Report) {
	t.Helper()
	spec, maps := f.load(t)
	m, rep, err := s.Ingest(context.Background(), spec, maps, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m, rep
}

func keysSource(file string) keys.Source { return keys.Source{File: file} }
