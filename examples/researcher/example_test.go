package researcher_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"insitu/benchmarks/suite"
)

// TestResearcherWalkthrough runs README.md's quick run (tiny synthetic data, the model workloads and
// PSI) and its comparison, through the library calls insitu bench makes.
func TestResearcherWalkthrough(t *testing.T) {
	var progress bytes.Buffer
	cfg := suite.Config{
		Suite: []string{"he-lr", "scorecard", "gbdt", "psi"}, Quick: true, Enterprises: 1500,
		HEPath: "in-process", HEIterations: 3, PSISizes: [][2]int{{100, 1000}},
		HEParams: &testInsecureLogN11, Python: "-", InProcess: true, WorkDir: t.TempDir(), Progress: &progress,
	}
	rep, err := suite.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	byID := map[string]suite.Row{}
	for _, r := range rep.Rows {
		byID[r.ID] = r
	}
	for _, id := range []string{"he-lr/synthetic/he", "he-lr/synthetic/plain", "scorecard/synthetic/plain", "gbdt/synthetic/plain"} {
		r, ok := byID[id]
		if !ok || r.Status != suite.StatusOK || r.AUC == nil || *r.AUC < 0.55 {
			t.Fatalf("%s: %+v\n%s", id, r, progress.String())
		}
	}
	if r := byID["he-lr/synthetic/lr-python"]; r.Status != suite.StatusSkipped || r.Reason == "" {
		t.Fatalf("python row without Python: %+v", r)
	}
	if !strings.Contains(progress.String(), "[1/") {
		t.Fatalf("no progress lines:\n%s", progress.String())
	}
	jsonPath, _, err := rep.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	back, err := suite.ReadReport(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var cmp bytes.Buffer
	suite.Compare(&cmp, back, rep)
	if !strings.Contains(cmp.String(), "| gbdt/synthetic/plain | 1.00× |") {
		t.Fatalf("compare:\n%s", cmp.String())
	}
}
