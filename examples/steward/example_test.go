// Package steward_test runs the platform data steward's walkthrough of README.md: the same steps, in
// the same order, through the library calls the insitu CLI makes for each command.
package steward_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"insitu/connectors"
	"insitu/connectors/ident"
	"insitu/connectors/synthetic"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/keys"
)

// readmeCommands are the commands of README.md's shell blocks, in order; TestWalkthrough runs each
// of them below, so a change to the README must come with a change to the test.
var readmeCommands = []string{
	`insitu synth --enterprises 2000 --seed 1 --out $W/synth`,
	`insitu init --data-dir $W/enclave --key-file $W/master.key`,
	`insitu ingest --spec $W/synth/dataset.yaml`,
	`insitu dataset list`,
	`insitu dataset show sme_synthetic --quality`,
	`insitu dataset verify sme_synthetic`,
	`awk -F, -v OFS=, 'NR == 18 { c = substr($1, 18, 1); $1 = substr($1, 1, 17) (c == "0" ? "1" : "0") } { print }' $W/synth/sources/water_utility.csv > $W/water-broken.csv`,
	`insitu ingest --spec $W/synth/dataset.yaml --input water_utility=$W/water-broken.csv`,
	`insitu ingest --spec $W/synth/dataset.yaml --input water_utility=$W/water-broken.csv --max-rejects 1 --report $W/report.json`,
	`insitu dataset list`,
	`insitu dataset verify sme_synthetic@v2`,
}

func TestReadmeCommands(t *testing.T) {
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	inShell := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```"):
			inShell = !inShell && strings.TrimPrefix(line, "```") == "sh"
		case inShell && (strings.HasPrefix(line, "insitu ") || strings.HasPrefix(line, "awk ")):
			got = append(got, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, readmeCommands) {
		t.Errorf("README.md commands:\n  %s\ntest runs:\n  %s", strings.Join(got, "\n  "), strings.Join(readmeCommands, "\n  "))
	}
}

func TestWalkthrough(t *testing.T) {
	ctx := context.Background()
	w := t.TempDir()

	// insitu synth --enterprises 2000 --seed 1 --out $W/synth
	sum, err := synthetic.Generate(synthetic.Config{Enterprises: 2000, Seed: 1}, filepath.Join(w, "synth"))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Enterprises != 2000 || len(sum.Sources) != 20 || len(sum.Categories) != 17 {
		t.Fatalf("synth: %d enterprises, %d sources, categories %v", sum.Enterprises, len(sum.Sources), sum.Categories)
	}

	// insitu init --data-dir $W/enclave --key-file $W/master.key
	enclaveDir, keyFile := filepath.Join(w, "enclave"), filepath.Join(w, "master.key")
	res, err := datadir.Init(enclaveDir, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if res.KeyFile != keyFile || res.EnvValue != "" {
		t.Errorf("init: key file %q, env value shown %v", res.KeyFile, res.EnvValue != "")
	}
	if _, err := datadir.Init(enclaveDir, filepath.Join(w, "other.key")); !errors.Is(err, datadir.ErrExists) {
		t.Errorf("a second init: err = %v, want ErrExists", err)
	}

	// export INSITU_DATA_DIR=$W/enclave INSITU_KEY_FILE=$W/master.key: every later command opens the
	// store as the CLI does.
	openStore := func() *dataset.Store {
		t.Helper()
		d, err := datadir.Open(enclaveDir, keys.Source{File: keyFile})
		if err != nil {
			t.Fatal(err)
		}
		s, err := dataset.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	specFile := filepath.Join(w, "synth", "dataset.yaml")

	// insitu ingest --spec $W/synth/dataset.yaml
	spec, mappings, err := connectors.LoadDatasetSpec(specFile)
	if err != nil {
		t.Fatal(err)
	}
	m1, rep1, err := openStore().Ingest(ctx, spec, mappings, dataset.IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m1.Name != synthetic.DatasetName || m1.Version != 1 || m1.Subjects != 2000 || rep1.RowsRejected != 0 {
		t.Fatalf("ingest: %s v%d, %d subjects, %d rejected", m1.Name, m1.Version, m1.Subjects, rep1.RowsRejected)
	}
	var text bytes.Buffer
	if err := rep1.WriteText(&text); err != nil || !strings.Contains(text.String(), "source water_utility") {
		t.Errorf("ingest report text (err %v) lacks the water utility", err)
	}

	// insitu dataset list
	list := func() []dataset.Entry {
		t.Helper()
		es, err := openStore().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	es := list()
	if len(es) != 1 {
		t.Fatalf("dataset list: %d entries, want 1", len(es))
	}
	text.Reset()
	if err := dataset.WriteListText(&text, es); err != nil || !strings.Contains(text.String(), "sme_synthetic  v1") {
		t.Errorf("dataset list text (err %v):\n%s", err, text.String())
	}

	// insitu dataset show sme_synthetic --quality
	m, q, err := openStore().Show(ctx, "sme_synthetic", 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || q == nil || q.Report == nil || len(q.Report.Sources) != 20 {
		t.Fatalf("dataset show: v%d, quality report %v", m.Version, q)
	}
	text.Reset()
	if err := m.WriteText(&text); err != nil || !strings.Contains(text.String(), "water.arrears_amount") {
		t.Errorf("dataset show text (err %v) lacks the water utility's columns", err)
	}

	// insitu dataset verify sme_synthetic
	verify := func(version int) int {
		t.Helper()
		vr, err := openStore().Verify(ctx, "sme_synthetic", version)
		if err != nil {
			t.Fatal(err)
		}
		if f := vr.Failed(); len(f) > 0 {
			t.Fatalf("verify v%d: %d checks failed, the first: %+v", version, len(f), f[0])
		}
		return len(vr.Checks)
	}
	if n := verify(0); n < 20 {
		t.Errorf("verify ran %d checks", n)
	}

	// awk … $W/synth/sources/water_utility.csv > $W/water-broken.csv
	broken := filepath.Join(w, "water-broken.csv")
	badCode := breakCheckCharacter(t, filepath.Join(w, "synth", "sources", "water_utility.csv"), broken, 18)

	// insitu ingest --spec $W/synth/dataset.yaml --input water_utility=$W/water-broken.csv
	inputs := map[string]string{"water_utility": broken}
	_, _, err = openStore().Ingest(ctx, spec, mappings, dataset.IngestOptions{Inputs: inputs})
	var re *connectors.RowError
	if !errors.As(err, &re) {
		t.Fatalf("ingest of the broken file: err = %v, want a *connectors.RowError", err)
	}
	if re.Source != "water_utility" || re.Line != 18 || re.Row != 17 || re.Column != "uscc" || re.Rule != ident.RuleCheck || re.Value != badCode {
		t.Errorf("row error = %+v", re)
	}
	for _, s := range []string{broken, "line 18 (data row 17)", `column "uscc"`, "rule check-character", "--max-rejects"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message lacks %q: %v", s, err)
		}
	}
	if es := list(); len(es) != 1 {
		t.Errorf("the failed ingest left a version: %d entries", len(es))
	}

	// insitu ingest … --max-rejects 1 --report $W/report.json
	m2, rep2, err := openStore().Ingest(ctx, spec, mappings, dataset.IngestOptions{Inputs: inputs, MaxRejects: 1})
	if err != nil {
		t.Fatal(err)
	}
	reportFile := filepath.Join(w, "report.json")
	text.Reset()
	if err := rep2.WriteJSON(&text); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reportFile, text.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var report connectors.Report
	if b, err := os.ReadFile(reportFile); err != nil || json.Unmarshal(b, &report) != nil {
		t.Fatalf("report.json: %v", err)
	}
	if m2.Version != 2 || m2.Subjects != 2000 || report.RowsRejected != 1 || report.MaxRejects != 1 {
		t.Errorf("ingest --max-rejects 1: v%d, %d subjects, report %d rejected of max %d", m2.Version, m2.Subjects, report.RowsRejected, report.MaxRejects)
	}
	for _, s := range report.Sources {
		if s.Source != "water_utility" {
			if len(s.Rejects) != 0 {
				t.Errorf("source %s lists rejects", s.Source)
			}
			continue
		}
		if len(s.Rejects) != 1 || s.Rejects[0].Row != 17 || s.Rejects[0].Line != 18 || s.Rejects[0].Rule != ident.RuleCheck {
			t.Errorf("water_utility rejects: %+v", s.Rejects)
		}
	}
	if rows1, rows2 := partRows(m1, "water_utility"), partRows(m2, "water_utility"); rows2 != rows1-1 {
		t.Errorf("water_utility rows: v1 %d, v2 %d; want one fewer", rows1, rows2)
	}

	// insitu dataset list; insitu dataset verify sme_synthetic@v2
	if es := list(); len(es) != 2 {
		t.Errorf("dataset list after --max-rejects 1: %d entries, want 2", len(es))
	}
	verify(2)
	// Version 1 is untouched.
	if m, _, err := openStore().Show(ctx, "sme_synthetic", 1); err != nil || partRows(m, "water_utility") != partRows(m1, "water_utility") {
		t.Errorf("v1 after v2: %v", err)
	}
}

// breakCheckCharacter copies src to dst with the credit code at the start of the given line given a
// wrong check character, as the README's awk command does, and returns the broken code.
func breakCheckCharacter(t *testing.T, src, dst string, line int) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	l := lines[line-1]
	c := byte('0')
	if l[17] == '0' {
		c = '1'
	}
	lines[line-1] = l[:17] + string(c) + l[18:]
	if err := os.WriteFile(dst, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, _ := strings.Cut(lines[line-1], ",")
	if ident.Validate(ident.KindUSCC, code) == nil {
		t.Fatalf("line %d still holds a valid credit code %s", line, code)
	}
	return code
}

func partRows(m *dataset.Manifest, source string) int64 {
	for _, p := range m.Parts {
		if p.Source == source {
			return p.Rows
		}
	}
	return -1
}
