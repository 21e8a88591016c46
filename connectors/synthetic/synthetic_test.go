package synthetic

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"insitu/connectors"
	"insitu/connectors/catalog"
	"insitu/connectors/ident"
)

// generated caches one small data set per seed for the tests that only read it.
var generated = map[uint64]string{}

func gen(t *testing.T, seed uint64) string {
	t.Helper()
	if dir, ok := generated[seed]; ok {
		return dir
	}
	parent, err := os.MkdirTemp("", "synthetic-test-")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "out")
	if _, err := Generate(Config{Enterprises: 3000, Seed: seed}, dir); err != nil {
		t.Fatal(err)
	}
	generated[seed] = dir
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range generated {
		os.RemoveAll(filepath.Dir(dir))
	}
	os.Exit(code)
}

// hashTree returns the SHA-256 of every file under dir, by relative path.
func hashTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(data)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, dir := range []string{a, b} {
		if _, err := Generate(Config{Enterprises: 1500, Seed: 42}, dir); err != nil {
			t.Fatal(err)
		}
	}
	ha, hb := hashTree(t, a), hashTree(t, b)
	if len(ha) != 2*len(sourceDefs)+4 {
		t.Errorf("%d files, want %d", len(ha), 2*len(sourceDefs)+4)
	}
	for p, h := range ha {
		if hb[p] != h {
			t.Errorf("%s differs between two runs with the same seed", p)
		}
	}

	// The manifest lists every other file with its true digest.
	var sum Summary
	data, err := os.ReadFile(filepath.Join(a, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Files) != len(ha)-1 {
		t.Errorf("manifest lists %d files, want %d", len(sum.Files), len(ha)-1)
	}
	for _, f := range sum.Files {
		if ha[f.Path] != f.SHA256 {
			t.Errorf("manifest: %s sha256 %s, file has %s", f.Path, f.SHA256, ha[f.Path])
		}
	}
	if sum.Seed != 42 || sum.Enterprises != 1500 || sum.Bank != DefaultBank || sum.AsOf != "2026-06-30" {
		t.Errorf("manifest header %+v", sum)
	}

	// Another seed changes every source, the labels and the authorizations.
	c := filepath.Join(t.TempDir(), "c")
	if _, err := Generate(Config{Enterprises: 1500, Seed: 43}, c); err != nil {
		t.Fatal(err)
	}
	hc := hashTree(t, c)
	for p, h := range ha {
		if strings.HasPrefix(p, "mappings/") {
			continue // mappings do not depend on the seed
		}
		if hc[p] == h {
			t.Errorf("%s is the same for seeds 42 and 43", p)
		}
	}
}

// TestPrefix checks that enterprise i does not depend on how many enterprises are generated: every
// source of a smaller run is a prefix of the same source of a larger one.
func TestPrefix(t *testing.T) {
	small, large := filepath.Join(t.TempDir(), "s"), filepath.Join(t.TempDir(), "l")
	if _, err := Generate(Config{Enterprises: 200, Seed: 9}, small); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(Config{Enterprises: 500, Seed: 9, LabelFraction: 0.3}, large); err != nil {
		t.Fatal(err)
	}
	for _, d := range sourceDefs {
		a, err := os.ReadFile(filepath.Join(small, "sources", d.key+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(large, "sources", d.key+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, a) {
			t.Errorf("%s of 200 enterprises is not a prefix of that of 500", d.key)
		}
	}
}

func TestOutputFolder(t *testing.T) {
	parent := t.TempDir()
	full := filepath.Join(parent, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "keep.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(Config{Enterprises: 10}, full); !errors.Is(err, ErrOutDirNotEmpty) {
		t.Errorf("non-empty folder: %v", err)
	}
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(Config{Enterprises: 10}, file); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("file as folder: %v", err)
	}
	empty := filepath.Join(parent, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(Config{Enterprises: 10}, empty); err != nil {
		t.Errorf("empty folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(empty, "manifest.json")); err != nil {
		t.Error(err)
	}
	if _, err := Generate(Config{Enterprises: 10}, filepath.Join(parent, "new", "nested")); err != nil {
		t.Errorf("new nested folder: %v", err)
	}

	// A run that fails at the end leaves neither the folder nor a temporary one.
	testHookBeforeRename = func() error { return errors.New("injected failure") }
	defer func() { testHookBeforeRename = func() error { return nil } }()
	failed := filepath.Join(parent, "failed")
	if _, err := Generate(Config{Enterprises: 50}, failed); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("injected failure: %v", err)
	}
	if _, err := os.Lstat(failed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed run left %s: %v", failed, err)
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"empty", "file", "full", "new"}; !slices.Equal(names, want) {
		t.Errorf("parent holds %v, want %v", names, want)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "Enterprises"},
		{Config{Enterprises: MaxEnterprises + 1}, "Enterprises"},
		{Config{Enterprises: 5, Bank: "Demo Bank"}, "Bank"},
		{Config{Enterprises: 5, LabelFraction: 1.5}, "LabelFraction"},
		{Config{Enterprises: 5, LabelFraction: math.NaN()}, "LabelFraction"},
		{Config{Enterprises: 5, AuthorizationRate: 2}, "AuthorizationRate"},
		{Config{Enterprises: 5, AsOf: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)}, "AsOf"},
	} {
		dir := filepath.Join(t.TempDir(), "out")
		_, err := Generate(tc.cfg, dir)
		var ce *ConfigError
		if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) || ce.Field != tc.field {
			t.Errorf("%+v: error %v, want a ConfigError on %s", tc.cfg, err, tc.field)
		}
		if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%+v: the failed run created %s", tc.cfg, dir)
		}
	}
}

// TestAllCategories checks that the mapped fields cover all 17 annex categories.
func TestAllCategories(t *testing.T) {
	dir := gen(t, 1)
	seen := map[int]bool{}
	for _, f := range mappedFields(t, dir) {
		if f.item != nil {
			seen[f.item.Category.No] = true
		}
	}
	for no := 1; no <= 17; no++ {
		if !seen[no] {
			t.Errorf("category %d has no mapped field", no)
		}
	}
	var sum Summary
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Categories) != 17 {
		t.Errorf("manifest categories %v", sum.Categories)
	}
}

// TestMappingsLoad loads every mapping file and the dataset spec with the connectors' own loader.
func TestMappingsLoad(t *testing.T) {
	dir := gen(t, 1)
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(dir, "dataset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Dataset != DatasetName || spec.Class != connectors.ClassSynthetic || spec.Subject != "uscc" || len(mappings) != len(sourceDefs) {
		t.Errorf("spec %+v with %d mappings", spec, len(mappings))
	}
	related := 0
	for _, m := range mappings {
		if _, err := os.Stat(m.ResolvedPath()); err != nil {
			t.Errorf("%s: %v", m.Source, err)
		}
		if m.Subject.RelatedPersons {
			related++
			// Without related_persons the loader refuses the items about persons.
			data, err := os.ReadFile(m.File())
			if err != nil {
				t.Fatal(err)
			}
			stripped := strings.Replace(string(data), "related_persons: true", "", 1)
			if _, err := connectors.ParseMapping([]byte(stripped), m.File(), catalog.Default()); err == nil {
				t.Errorf("%s loads without related_persons", m.Source)
			}
		}
	}
	if related != 3 {
		t.Errorf("%d sources carry items about persons, want 3 (real estate, agriculture, marital status)", related)
	}

	// Every source streams through the connectors' reader without a rejected row.
	for _, m := range mappings {
		rd, err := connectors.Open(context.Background(), m, connectors.Options{})
		if err != nil {
			t.Fatalf("%s: %v", m.Source, err)
		}
		for {
			rec, err := rd.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", m.Source, err)
			}
			rec.Release()
		}
		rep := rd.Report()
		_, rows := readCSV(t, m.ResolvedPath())
		if !rep.Complete || rep.RowsAccepted != int64(len(rows)) || rep.RowsRejected != 0 || rep.InvalidIdentifiers != 0 || rep.DuplicateSubjects != 0 {
			t.Errorf("%s: read %d of %d rows, %d rejected, %d invalid identifiers, %d duplicates",
				m.Source, rep.RowsAccepted, len(rows), rep.RowsRejected, rep.InvalidIdentifiers, rep.DuplicateSubjects)
		}
		if err := rd.Close(); err != nil {
			t.Error(err)
		}
	}
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// TestValuesMatchCatalog checks every cell against its field's type, enum values and range, every
// identifier's validity, and that sources cover the enterprises unevenly with some missing cells.
func TestValuesMatchCatalog(t *testing.T) {
	dir := gen(t, 2)
	const n = 3000
	byCol := map[string]mappedField{}
	for _, f := range mappedFields(t, dir) {
		byCol[f.source+"/"+f.column] = f
	}
	asOf := DefaultAsOf
	incomplete := 0
	for _, d := range sourceDefs {
		header, rows := readCSV(t, filepath.Join(dir, "sources", d.key+".csv"))
		if header[0] != "uscc" || len(header) != 1+len(d.columns) {
			t.Fatalf("%s: header %v", d.key, header)
		}
		switch {
		case d.key == "market_regulator" && len(rows) != n:
			t.Errorf("market_regulator has %d rows, want every enterprise", len(rows))
		case d.key != "market_regulator" && (len(rows) == 0 || len(rows) >= n):
			t.Errorf("%s has %d rows of %d enterprises", d.key, len(rows), n)
		}
		seen := map[string]bool{}
		shareholderType := slices.Index(header, "shareholder_type")
		for ri, row := range rows {
			where := fmt.Sprintf("%s data row %d", d.key, ri+1)
			if err := ident.Validate(ident.KindUSCC, row[0]); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if seen[row[0]] {
				t.Fatalf("%s: credit code %s twice", where, row[0])
			}
			seen[row[0]] = true
			for ci, cell := range row[1:] {
				f, ok := byCol[d.key+"/"+header[1+ci]]
				if !ok || cell == "" {
					continue
				}
				kind := f.field.IDKind
				if f.name == "shareholders_and_contributions.shareholder_id" {
					kind = map[string]string{"natural_person": "resident_id"}[row[shareholderType]]
					if kind == "" {
						kind = "uscc"
					}
				}
				if err := checkCell(f.field, kind, cell, asOf); err != nil {
					t.Fatalf("%s, column %s (%s): %q: %v", where, header[1+ci], f.name, cell, err)
				}
			}
		}
		for ci := range d.columns {
			for _, row := range rows {
				if row[1+ci] == "" {
					incomplete++
					break
				}
			}
		}
	}
	if incomplete < 40 {
		t.Errorf("only %d columns have a missing value", incomplete)
	}
}

func checkCell(f *catalog.Field, idKind, s string, asOf time.Time) error {
	var v float64
	switch f.Type {
	case catalog.TypeInt:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v = float64(i)
	case catalog.TypeFloat:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("not a finite number")
		}
		v = x
	case catalog.TypeBool:
		if s != "true" && s != "false" {
			return fmt.Errorf("not true or false")
		}
		return nil
	case catalog.TypeDate:
		if !dateRE.MatchString(s) {
			return fmt.Errorf("not YYYY-MM-DD")
		}
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return err
		}
		if d.Year() < 1940 || d.Year() > asOf.Year()+25 {
			return fmt.Errorf("implausible date")
		}
		return nil
	case catalog.TypeEnum:
		if !slices.Contains(f.Values, s) {
			return fmt.Errorf("not one of %v", f.Values)
		}
		return nil
	case catalog.TypeID:
		if err := ident.Validate(ident.Kind(idKind), s); err != nil {
			return err
		}
		if idKind == string(ident.KindResidentID) {
			birth, _ := ident.ResidentIDBirthDate(s)
			if age := asOf.Sub(birth).Hours() / 24 / 365.25; age < 18 || age > 80 {
				return fmt.Errorf("holder is %.0f years old", age)
			}
		}
		return nil
	default:
		return nil
	}
	if f.Min != nil && v < *f.Min || f.Max != nil && v > *f.Max {
		return fmt.Errorf("outside [%v, %v]", f.Min, f.Max)
	}
	return nil
}

func TestLabelsAndAuthorizations(t *testing.T) {
	dir := gen(t, 3)
	const n = 3000
	header, labels := readCSV(t, filepath.Join(dir, "labels.csv"))
	if !slices.Equal(header, []string{"uscc", "label", "observation_date"}) {
		t.Fatalf("labels header %v", header)
	}
	if len(labels) != n/2 {
		t.Errorf("%d labels, want %d", len(labels), n/2)
	}
	labelled := map[string]bool{}
	defaults := 0
	for i, l := range labels {
		if err := ident.Validate(ident.KindUSCC, l[0]); err != nil || labelled[l[0]] {
			t.Fatalf("labels data row %d: %q (%v)", i+1, l[0], err)
		}
		labelled[l[0]] = true
		if l[1] != "0" && l[1] != "1" || l[2] != "2026-06-30" {
			t.Fatalf("labels data row %d: %v", i+1, l)
		}
		if l[1] == "1" {
			defaults++
		}
	}
	if rate := float64(defaults) / float64(len(labels)); rate < 0.03 || rate > 0.15 {
		t.Errorf("default rate %.3f", rate)
	}

	header, auths := readCSV(t, filepath.Join(dir, "authorizations.csv"))
	if !slices.Equal(header, AuthorizationHeader) {
		t.Fatalf("authorizations header %v", header)
	}
	cat := catalog.Default()
	evidenceRE := regexp.MustCompile(`^auth-\d{6}\.pdf#sha256=[0-9a-f]{64}$`)
	authorized, current := map[string]bool{}, map[string]bool{}
	var expired, partial, unlabelled int
	var lengths []int
	purposes := map[string]int{}
	evidence := map[string]bool{}
	asOf := DefaultAsOf.Format(time.DateOnly)
	for i, a := range auths {
		where := fmt.Sprintf("authorizations data row %d", i+1)
		if a[0] != "uscc" || ident.Validate(ident.KindUSCC, a[1]) != nil || a[2] != DefaultBank {
			t.Fatalf("%s: %v", where, a)
		}
		purposes[a[3]]++
		if a[4] == "" || !dateRE.MatchString(a[6]) || !dateRE.MatchString(a[7]) || a[6] > a[7] {
			t.Fatalf("%s: %v", where, a)
		}
		if !evidenceRE.MatchString(a[8]) || evidence[a[8]] {
			t.Fatalf("%s: evidence %q", where, a[8])
		}
		evidence[a[8]] = true
		items := strings.Split(a[5], ";")
		for _, key := range items {
			it, err := cat.Item(key)
			if err != nil || !it.NeedsAuthorization {
				t.Fatalf("%s: item %q (%v)", where, key, err)
			}
		}
		lengths = append(lengths, len(items))
		if !labelled[a[1]] {
			unlabelled++
			continue
		}
		authorized[a[1]] = true
		if a[7] < asOf {
			expired++
		} else if a[6] <= asOf {
			current[a[1]] = true
		}
	}
	for p := range purposes {
		if !slices.Contains([]string{PurposePreScreening, PurposeCreditApproval, PurposePostLoanMonitoring, PurposeModelDevelopment}, p) {
			t.Errorf("purpose %q", p)
		}
	}
	for _, l := range lengths {
		if l < slices.Max(lengths) {
			partial++
		}
	}
	share := float64(len(authorized)) / float64(len(labels))
	t.Logf("authorized %.3f, current %d, expired %d, partial %d, unlabelled %d, purposes %v", share, len(current), expired, partial, unlabelled, purposes)
	if share < 0.86 || share > 0.94 {
		t.Errorf("%.3f of the labelled enterprises have an authorization, want about 0.9", share)
	}
	if expired == 0 || partial == 0 || unlabelled == 0 || len(purposes) != 4 || len(current) >= len(authorized) {
		t.Errorf("want some expired (%d), partial (%d) and unlabelled (%d) records, every purpose (%v), and fewer current than authorized (%d, %d)",
			expired, partial, unlabelled, purposes, len(current), len(authorized))
	}
}

func BenchmarkGenerate(b *testing.B) {
	for _, n := range []int{20000} {
		b.Run(fmt.Sprintf("enterprises=%d", n), func(b *testing.B) {
			for i := range b.N {
				dir := filepath.Join(b.TempDir(), strconv.Itoa(i))
				if _, err := Generate(Config{Enterprises: n, Seed: 1}, dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
