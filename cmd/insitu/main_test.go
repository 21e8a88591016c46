package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"insitu/enclave/sandbox"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"insitu/connectors"
	"insitu/connectors/catalog"
	"insitu/connectors/ident"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/keys"
)

// childEnv makes the test binary act as the insitu binary: TestMain calls main, so exit codes and
// the standard streams are the real ones.
const childEnv = "INSITU_TEST_ACT_AS_CLI"

func TestMain(m *testing.M) {
	sandbox.MaybeRunTrampoline()
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// result is what one run of the CLI printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s\n--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// insitu runs the CLI as a child process in dir with the given extra environment (KEY=VALUE), with
// every INSITU_* variable of the test's own environment removed.
func insitu(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INSITU_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"=1")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("insitu %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// mustRun runs the CLI and fails the test unless it exits 0.
func mustRun(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	r := insitu(t, dir, env, args...)
	if r.code != 0 {
		t.Fatalf("insitu %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// inProcess runs the command tree in this process.
func inProcess(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestVersion(t *testing.T) {
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/spf13/cobra (v\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod does not require github.com/spf13/cobra")
	}
	r := mustRun(t, t.TempDir(), nil, "version")
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			lines[f[0]] = f[1]
		}
	}
	if got := lines["go"]; got != runtime.Version() {
		t.Errorf("go line = %q, want %q\n%s", got, runtime.Version(), r.stdout)
	}
	if got := lines["github.com/spf13/cobra"]; got != string(m[1]) {
		t.Errorf("cobra line = %q, want %q (go.mod)\n%s", got, m[1], r.stdout)
	}
	if lines["insitu"] == "" {
		t.Errorf("no insitu version line:\n%s", r.stdout)
	}
}

// catalogJSON is the part of `insitu catalog --json` the test reads.
type catalogJSON struct {
	CategoryCount int `json:"category_count"`
	ItemCount     int `json:"item_count"`
	Categories    []struct {
		No     int    `json:"no"`
		Key    string `json:"key"`
		NameZH string `json:"name_zh"`
		NameEN string `json:"name_en"`
		Items  []struct {
			Key     string `json:"key"`
			Subject string `json:"subject"`
			Sharing string `json:"sharing"`
			Fields  []struct {
				Key  string `json:"key"`
				Type string `json:"type"`
				Role string `json:"role"`
			} `json:"fields"`
		} `json:"items"`
	} `json:"categories"`
}

func TestCatalogJSON(t *testing.T) {
	out, _, err := inProcess(t, "catalog", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var c catalogJSON
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("catalog --json is not JSON: %v", err)
	}
	if c.CategoryCount != 17 || len(c.Categories) != 17 {
		t.Fatalf("categories: count %d, listed %d, want 17", c.CategoryCount, len(c.Categories))
	}
	modes := map[string]bool{}
	for _, m := range []catalog.SharingMode{catalog.NationalAPIAuthorized, catalog.NationalPhysical, catalog.LocalPhysical, catalog.VerificationAuthorized} {
		modes[string(m)] = true
	}
	types := map[string]bool{"string": true, "enum": true, "int": true, "float": true, "bool": true, "date": true, "id": true}
	items, persons := 0, map[int]bool{}
	seenModes := map[string]bool{}
	for i, cat := range c.Categories {
		if cat.No != i+1 || cat.Key == "" || cat.NameZH == "" || cat.NameEN == "" {
			t.Errorf("category %d: no %d key %q names %q/%q", i+1, cat.No, cat.Key, cat.NameZH, cat.NameEN)
		}
		if len(cat.Items) == 0 {
			t.Errorf("category %d has no items", cat.No)
		}
		for _, it := range cat.Items {
			items++
			if !modes[it.Sharing] {
				t.Errorf("item %s: sharing mode %q", it.Key, it.Sharing)
			}
			seenModes[it.Sharing] = true
			if it.Subject == "person" {
				persons[cat.No] = true
			}
			if len(it.Fields) == 0 {
				t.Errorf("item %s has no fields", it.Key)
			}
			features := 0
			for _, f := range it.Fields {
				if !types[f.Type] {
					t.Errorf("item %s field %s: type %q", it.Key, f.Key, f.Type)
				}
				if f.Role == "feature" {
					features++
				}
			}
			if features == 0 {
				t.Errorf("item %s has no feature field", it.Key)
			}
		}
	}
	if items != 37 || c.ItemCount != 37 {
		t.Errorf("items: listed %d, item_count %d, want 37", items, c.ItemCount)
	}
	if len(seenModes) != 4 {
		t.Errorf("sharing modes used: %v, want all 4", seenModes)
	}
	if want := map[int]bool{9: true, 11: true, 17: true}; !mapsEqual(persons, want) {
		t.Errorf("categories with items about persons: %v, want 9, 11, 17", persons)
	}

	// The table prints in both languages.
	for lang, want := range map[string]string{"en": "Marital status", "zh": "婚姻"} {
		out, _, err := inProcess(t, "catalog", "--lang", lang)
		if err != nil {
			t.Fatalf("catalog --lang %s: %v", lang, err)
		}
		if !strings.Contains(out, want) {
			t.Errorf("catalog --lang %s lacks %q", lang, want)
		}
	}
	if _, _, err := inProcess(t, "catalog", "--lang", "fr"); err == nil {
		t.Error("catalog --lang fr: no error")
	}
}

func TestInit(t *testing.T) {
	tmp := t.TempDir()
	r := mustRun(t, tmp, nil, "init", "--data-dir", "dd", "--key-file", "dd.key")
	if !strings.Contains(r.stdout, "master key file "+filepath.Join(tmp, "dd.key")) {
		t.Errorf("init with --key-file printed:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "export ") {
		t.Errorf("init with --key-file printed an export line:\n%s", r.stdout)
	}
	if fi, err := os.Stat(filepath.Join(tmp, "dd.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want mode 0600", err, fi.Mode())
	}

	cases := []struct {
		name string
		prep func(dir string)
		args []string
		want []string
	}{
		{"existing data directory", nil,
			[]string{"--data-dir", "dd", "--key-file", "other.key"}, []string{"dd", "already exists"}},
		{"non-empty folder", func(dir string) {
			os.Mkdir(filepath.Join(dir, "full"), 0o700)
			os.WriteFile(filepath.Join(dir, "full", "notes.txt"), []byte("x"), 0o600)
		}, []string{"--data-dir", "full", "--key-file", "full.key"}, []string{"full", "already exists", "choose an empty or new folder"}},
		{"key file inside", nil,
			[]string{"--data-dir", "inner", "--key-file", "inner/master.key"}, []string{"key file inside the data directory", "keep the master key elsewhere"}},
		{"key file exists", nil,
			[]string{"--data-dir", "fresh", "--key-file", "dd.key"}, []string{"dd.key", "already exists"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.prep != nil {
				c.prep(tmp)
			}
			before := hashTree(t, tmp)
			r := insitu(t, tmp, nil, append([]string{"init"}, c.args...)...)
			if r.code == 0 {
				t.Fatalf("init succeeded: %s", r)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, r)
				}
			}
			if after := hashTree(t, tmp); !mapsEqual(before, after) {
				t.Errorf("a refused init changed files: before %v after %v", before, after)
			}
			for _, p := range []string{"inner", "fresh"} {
				if _, err := os.Stat(filepath.Join(tmp, p)); err == nil {
					t.Errorf("a refused init left %s behind", p)
				}
			}
		})
	}

	// Without --key-file the key is printed once, as an export line that opens the directory.
	r = mustRun(t, tmp, nil, "init", "--data-dir", "envdd")
	m := regexp.MustCompile(`(?m)^\s*export ` + keys.EnvVar + `=(\S+)$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("init without --key-file printed no export line:\n%s", r.stdout)
	}
	if _, err := keys.Parse(m[1]); err != nil {
		t.Fatalf("exported key %q: %v", m[1], err)
	}
	r = mustRun(t, tmp, []string{keys.EnvVar + "=" + m[1]}, "dataset", "list", "--data-dir", "envdd")
	if !strings.Contains(r.stdout, "no datasets") {
		t.Errorf("dataset list with the exported key printed:\n%s", r.stdout)
	}
	other, _ := keys.Generate()
	r = insitu(t, tmp, []string{keys.EnvVar + "=" + other.Encode()}, "dataset", "list", "--data-dir", "envdd")
	if r.code == 0 || !strings.Contains(r.stderr, "wrong master key") {
		t.Errorf("dataset list with another key: %s", r)
	}
	r = insitu(t, tmp, nil, "dataset", "list", "--data-dir", "envdd")
	if r.code == 0 || !strings.Contains(r.stderr, keys.EnvVar) {
		t.Errorf("dataset list without a key: %s", r)
	}
}

// creditFixture writes a 20-row CSV source of tax arrears with valid credit codes, its mapping
// (source "tax", subject column "uscc") and returns the codes. When badRow > 0 that data row's check
// character is replaced by a wrong one.
func creditFixture(t *testing.T, dir string, badRow int) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(17, 2))
	var b strings.Builder
	b.WriteString("uscc,arrears_count,arrears_amount,grade\n")
	codes := make([]string, 20)
	grades := []string{"A", "B", "M", "C", "D"}
	for i := range codes {
		code := ident.NewUSCC(rng, "330100")
		if i+1 == badRow {
			code = code[:17] + string(wrongCheck(code))
		}
		codes[i] = code
		fmt.Fprintf(&b, "%s,%d,%d.5,%s\n", code, i%4, 100*i, grades[i%len(grades)])
	}
	writeFile(t, filepath.Join(dir, "tax.csv"), b.String())
	writeFile(t, filepath.Join(dir, "tax.yaml"), `source: tax
provider: test_tax_bureau
provider_name: Test tax bureau
format: csv
path: tax.csv
subject:
  column: uscc
  kind: uscc
columns:
  - column: arrears_count
    field: tax_arrears_history.arrears_count_24m
  - column: arrears_amount
    field: tax_arrears_history.arrears_amount_24m
  - column: grade
    field: tax_arrears_history.tax_credit_grade
`)
	return codes
}

// wrongCheck returns a check character from the GB 32100 set that is not the code's.
func wrongCheck(code string) byte {
	for _, c := range []byte("0123456789ABCDEFGHJKLMNPQRTUWXY") {
		if c != code[17] {
			return c
		}
	}
	panic("unreachable")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newEnclaveDir creates a data directory "dd" with key file "dd.key" in tmp and returns the flags that
// open it.
func newEnclaveDir(t *testing.T, tmp string) []string {
	t.Helper()
	mustRun(t, tmp, nil, "init", "--data-dir", "dd", "--key-file", "dd.key")
	return []string{"--data-dir", "dd", "--key-file", "dd.key"}
}

func TestIngestInvalidCreditCode(t *testing.T) {
	tmp := t.TempDir()
	ef := newEnclaveDir(t, tmp)
	codes := creditFixture(t, tmp, 17)
	ingest := append([]string{"ingest", "--mapping", "tax.yaml", "--dataset", "tax", "--class", "platform", "--quiet"}, ef...)

	r := insitu(t, tmp, nil, ingest...)
	if r.code != 1 {
		t.Fatalf("ingest of a file with an invalid credit code: want exit 1, got %s", r)
	}
	for _, want := range []string{"tax.csv", "line 18", "data row 17", `column "uscc"`, "rule check-character", codes[16], "--max-rejects"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("error lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("error is not one line:\n%s", r.stderr)
	}
	list := mustRun(t, tmp, nil, append([]string{"dataset", "list"}, ef...)...)
	if !strings.Contains(list.stdout, "no datasets") {
		t.Errorf("after a failed ingest, dataset list shows:\n%s", list.stdout)
	}
	assertNoStage(t, filepath.Join(tmp, "dd"))

	// --max-rejects 1: the same file ingests and the report lists the row, in print and in JSON.
	r = mustRun(t, tmp, nil, append(ingest, "--max-rejects", "1", "--report", "report.json")...)
	for _, want := range []string{"20 rows read, 19 accepted, 1 rejected", "rejected rows (1)", "line 18 (data row 17)", "wrote tax v1: 19 subjects"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}
	var rep connectors.Report
	readJSON(t, filepath.Join(tmp, "report.json"), &rep)
	if rep.MaxRejects != 1 || rep.RowsRead != 20 || rep.RowsAccepted != 19 || rep.RowsRejected != 1 || len(rep.Sources) != 1 {
		t.Fatalf("report totals: %+v", rep)
	}
	src := rep.Sources[0]
	if len(src.Rejects) != 1 || src.InvalidIdentifiers != 1 {
		t.Fatalf("report rejects %d, invalid ids %d; want 1 and 1", len(src.Rejects), src.InvalidIdentifiers)
	}
	rej := src.Rejects[0]
	if rej.Line != 18 || rej.Row != 17 || rej.Column != "uscc" || rej.Rule != ident.RuleCheck || rej.Value != codes[16] || rej.Source != "tax" {
		t.Errorf("reject = %+v; want line 18, row 17, column uscc, rule %s, value %s", rej, ident.RuleCheck, codes[16])
	}
	if fi, err := os.Stat(filepath.Join(tmp, "report.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("report.json: %v, mode %v; want 0600", err, fi.Mode())
	}
	list = mustRun(t, tmp, nil, append([]string{"dataset", "list"}, ef...)...)
	if !regexp.MustCompile(`(?m)^tax\s+v1\s+platform\s+.*\s19\s+3\s+tax$`).MatchString(list.stdout) {
		t.Errorf("dataset list after --max-rejects 1:\n%s", list.stdout)
	}

	// The dataset holds the 19 valid rows and not the rejected one.
	store := openStore(t, tmp)
	m, err := store.Manifest(context.Background(), "tax", 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subjects != 19 || m.Class != "platform" || len(m.Quality) != 1 || m.Quality[0].RowsRejected != 1 {
		t.Errorf("manifest: %d subjects, class %s, quality %+v", m.Subjects, m.Class, m.Quality)
	}

	// Two invalid rows are one more than --max-rejects 1 allows.
	creditFixture(t, tmp, 17)
	b, _ := os.ReadFile(filepath.Join(tmp, "tax.csv"))
	lines := strings.Split(string(b), "\n")
	lines[3] = lines[3][:17] + string(wrongCheck(lines[3][:18])) + lines[3][18:]
	writeFile(t, filepath.Join(tmp, "tax2.csv"), strings.Join(lines, "\n"))
	r = insitu(t, tmp, nil, append(ingest, "--max-rejects", "1", "--input", "tax2.csv")...)
	if r.code != 1 || !strings.Contains(r.stderr, "line 18 (data row 17)") {
		t.Errorf("two invalid rows with --max-rejects 1: %s", r)
	}
	list = mustRun(t, tmp, nil, append([]string{"dataset", "list"}, ef...)...)
	if strings.Contains(list.stdout, "v2") {
		t.Errorf("a failed ingest left a version:\n%s", list.stdout)
	}
}

// assertNoStage fails when a staging folder of an ingest is left under the data directory.
func assertNoStage(t *testing.T, dd string) {
	t.Helper()
	filepath.WalkDir(dd, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".stage-") {
			t.Errorf("staging folder left behind: %s", p)
		}
		return nil
	})
}

func openStore(t *testing.T, tmp string) *dataset.Store {
	t.Helper()
	d, err := datadir.Open(filepath.Join(tmp, "dd"), keys.Source{File: filepath.Join(tmp, "dd.key")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := dataset.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDatasetVerify(t *testing.T) {
	tmp := t.TempDir()
	ef := newEnclaveDir(t, tmp)
	creditFixture(t, tmp, 0)
	mustRun(t, tmp, nil, append([]string{"ingest", "--mapping", "tax.yaml", "--dataset", "tax", "--class", "platform", "-q"}, ef...)...)

	r := mustRun(t, tmp, nil, append([]string{"dataset", "verify", "tax"}, ef...)...)
	if strings.Contains(strings.ToLower(r.stdout), "fail") || !regexp.MustCompile(`dataset tax v1 verified: \d+ checks passed`).MatchString(r.stdout) {
		t.Errorf("verify of a fresh ingest:\n%s", r.stdout)
	}
	show := mustRun(t, tmp, nil, append([]string{"dataset", "show", "tax@v1", "--quality"}, ef...)...)
	for _, want := range []string{"tax", "platform", "test_tax_bureau", "tax_arrears_history.arrears_count_24m"} {
		if !strings.Contains(show.stdout, want) {
			t.Errorf("dataset show lacks %q:\n%s", want, show.stdout)
		}
	}

	part := filepath.Join(tmp, "dd", dataset.DatasetsDir, "tax", "v1", "part-tax.arrows.enc")
	b, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(part, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r = insitu(t, tmp, nil, append([]string{"dataset", "verify", "tax"}, ef...)...)
	if r.code != 1 {
		t.Fatalf("verify after flipping a byte: want exit 1, got %s", r)
	}
	if !strings.Contains(r.stderr, "checks failed") || !regexp.MustCompile(`(?m)^FAIL\s+part tax: .*part-tax\.arrows\.enc.*tampered`).MatchString(r.stdout) {
		t.Errorf("verify after flipping a byte does not name the failure:\n%s", r)
	}
}

func TestUsageErrors(t *testing.T) {
	tmp := t.TempDir()
	ef := newEnclaveDir(t, tmp)
	creditFixture(t, tmp, 0)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"ingest without spec or mapping", append([]string{"ingest"}, ef...), "pass --spec FILE, or --mapping FILE"},
		{"ingest with spec and mapping", append([]string{"ingest", "--spec", "x.yaml", "--mapping", "tax.yaml"}, ef...), "not both"},
		{"mapping without dataset", append([]string{"ingest", "--mapping", "tax.yaml"}, ef...), "--dataset NAME"},
		{"input names an unknown source", append([]string{"ingest", "--mapping", "tax.yaml", "--dataset", "tax", "--class", "platform", "--input", "water=tax.csv"}, ef...), `no source named "water"`},
		{"input twice", append([]string{"ingest", "--mapping", "tax.yaml", "--dataset", "tax", "--class", "platform", "--input", "tax.csv", "--input", "tax=tax.csv"}, ef...), "given twice"},
		{"no data directory", []string{"dataset", "list"}, "--data-dir"},
		{"bad version reference", append([]string{"dataset", "show", "tax@v0"}, ef...), "NAME@vN"},
		{"init without data dir", []string{"init"}, "--data-dir"},
		{"synth without out", []string{"synth"}, "--out"},
		{"synth bad date", []string{"synth", "--out", "s", "--as-of", "30/06/2026"}, "YYYY-MM-DD"},
		{"unknown flag", []string{"ingest", "--no-such-flag"}, "unknown flag"},
		{"plugin run bad digest", append([]string{"plugin", "run", "abc", "--dataset", "tax", "--label-column", "x"}, ef...), `"abc"`},
		{"plugin run without labels", append([]string{"plugin", "run", "sha256:" + strings.Repeat("0", 64), "--dataset", "tax"}, ef...), "exactly one of --label-column and --labels"},
		{"audit verify bad head", append([]string{"audit", "verify", "--head", "1:zz"}, ef...), "--head"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := insitu(t, tmp, nil, c.args...)
			if r.code != 2 {
				t.Errorf("want exit 2, got %s", r)
			}
			if !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr lacks %q: %s", c.want, r)
			}
		})
	}
	list := mustRun(t, tmp, nil, append([]string{"dataset", "list"}, ef...)...)
	if !strings.Contains(list.stdout, "no datasets") {
		t.Errorf("usage errors wrote a dataset:\n%s", list.stdout)
	}
}
