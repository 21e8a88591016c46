package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPSILocal(t *testing.T) {
	tmp := t.TempDir()
	ef := newEnclaveDir(t, tmp)
	today := time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	mustRun(t, tmp, nil, "synth", "--enterprises", "300", "--seed", "3", "--as-of", today, "--out", "s")
	mustRun(t, tmp, nil, append([]string{"ingest", "--spec", "s/dataset.yaml", "--quiet"}, ef...)...)
	mustRun(t, tmp, nil, append([]string{"consent", "import", "s/authorizations.csv"}, ef...)...)
	var man struct {
		Dataset string `json:"dataset"`
		Bank    string `json:"bank"`
	}
	readJSON(t, filepath.Join(tmp, "s", "manifest.json"), &man)
	labels, err := os.ReadFile(filepath.Join(tmp, "s", "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(labels), "\n"), "\n")
	// A bad check character in the second data row.
	bad := []byte(lines[2])
	bad[17] = map[bool]byte{true: '1', false: '0'}[bad[17] == '0']
	lines[2] = string(bad)
	writeFile(t, filepath.Join(tmp, "customers.csv"), strings.Join(lines, "\n")+"\n")

	r := mustRun(t, tmp, nil, append([]string{"psi", "--dataset", man.Dataset, "--ids", "customers.csv", "--bank", man.Bank}, ef...)...)
	if !strings.Contains(r.stdout, "1 invalid (not sent)") || !strings.Contains(r.stdout, "customers.csv:3: row 2") {
		t.Errorf("the invalid row is not reported:\n%s", r)
	}
	if !strings.Contains(r.stderr, "match [##############################] 100%") {
		t.Errorf("no progress bar:\n%s", r.stderr)
	}
	m := regexp.MustCompile(`matched (\d+) in`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no match count:\n%s", r)
	}
	n, _ := strconv.Atoi(m[1])
	f, err := os.Open(filepath.Join(tmp, "customers.matched.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || len(rows) != n+1 || strings.Join(rows[0], ",") != lines[0] {
		t.Fatalf("%d matched, %d rows written, header %v", n, len(rows), rows[0])
	}
	for _, row := range rows[1:] {
		if !slices.Contains(lines[1:], strings.Join(row, ",")) || strings.Join(row, ",") == lines[2] {
			t.Errorf("written row %v is not a valid row of the bank's file", row)
		}
	}
	// Another bank finds none of them; the output file is never overwritten.
	r = mustRun(t, tmp, nil, append([]string{"psi", "--dataset", man.Dataset, "--ids", "customers.csv", "--bank", "other-bank", "--out", "other.csv", "-q"}, ef...)...)
	if !strings.Contains(r.stdout, "matched 0 in") || r.stderr != "" {
		t.Errorf("another bank:\n%s", r)
	}
	if r := insitu(t, tmp, nil, append([]string{"psi", "--dataset", man.Dataset, "--ids", "customers.csv", "--bank", man.Bank}, ef...)...); r.code == 0 || !strings.Contains(r.stderr, "exists") {
		t.Errorf("an existing output file:\n%s", r)
	}
}
