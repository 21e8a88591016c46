package enclave

import (
	"context"
	"math"
	"strings"
	"testing"

	"insitu/enclave/registry"
	"insitu/enclave/scoring"
	"insitu/plugins/sdk"
)

// TestReleasedScorecardAndTreesScoreOnline runs an aggregate-mode scorecard job and a gbdt job to
// their release, finds each model in the registry (registered in the release's transaction), and
// scores the cohort's subjects online: every answer is the gate's released score for the same
// subject, up to the two rounding steps (the gate's ScoreStep, the served ProbabilityStep), and a
// scorecard's reason codes name released bins.
func TestReleasedScorecardAndTreesScoreOnline(t *testing.T) {
	if binDir == "" {
		t.Skip("running a job starts a sandboxed plugin: it needs root on Linux (CI runs it so)")
	}
	for _, tc := range []struct {
		plugin, family string
		eps            float64
	}{
		{"scorecard", sdk.FamilyScorecard, 4},
		{"gbdt", sdk.FamilyGBDT, 8},
	} {
		t.Run(tc.plugin, func(t *testing.T) {
			ctx := context.Background()
			l := newLab(t, 10000)
			plugin, labels := l.upload(t, tc.plugin)
			if err := l.e.Privacy.SetBudget(ctx, "steward-a", l.bank.Name, l.dataset.Name, tc.eps); err != nil {
				t.Fatal(err)
			}
			id := submitAndApprove(t, l, l.aggManifest(t, plugin, labels, tc.family, tc.eps))
			rep, err := l.e.RunJob(ctx, id, l.runOptions(nil))
			if err != nil {
				t.Fatal(err)
			}
			b := checkReleased(t, l, rep)
			mod, err := l.e.Models.Get(ctx, id, l.bank.Name)
			if err != nil {
				t.Fatalf("the released %s is not registered: %v", tc.family, err)
			}
			switch {
			case tc.family == sdk.FamilyScorecard && (mod.Scorecard == nil || mod.Release.ScorecardSHA256 != rep.Receipt.Outputs.Scorecard):
				t.Fatalf("registered %+v", mod.Document)
			case tc.family == sdk.FamilyGBDT && (mod.Trees == nil || mod.Release.TreesSHA256 != rep.Receipt.Outputs.Trees ||
				len(mod.Trees.Trees) != len(b.Trees.Trees)):
				t.Fatalf("registered %+v", mod.Document)
			}
			if _, err := mod.PMML("test"); err != nil {
				t.Fatalf("pmml: %v", err)
			}
			released := map[string]float64{}
			for _, s := range b.Scores {
				released[s.Subject] = s.Score
			}
			scoreStep := b.Gate.ScoreStep

			// The registered model applied to the cohort's features gives the released scores.
			n, _ := rep.Cohort.XTrain.Dims()
			for i := range n {
				p := mod.Probability(rep.Cohort.XTrain.RawRowView(i))
				if got := released[rep.Cohort.Subjects[i]]; math.Abs(p-got) > scoreStep/2+1e-12 {
					t.Fatalf("subject %d: registered model %v, released score %v", i, p, got)
				}
			}

			// Online: the features come from the current dataset version through the same transforms.
			// The comparison is about the numbers; the guard on the inputs a model reads has its own
			// tests, so the minimum is set to what this model reads.
			if err := l.e.Models.SetSetting(ctx, "steward-a", registry.SettingMinFeatures, max(1, min(registry.DefaultMinFeatures, len(mod.UsedInputs())))); err != nil {
				t.Fatal(err)
			}
			svc := scoring.New(scoring.Config{DB: l.e.DB, Audit: l.e.Audit, Datasets: l.e.Datasets, Consent: l.e.Consent, Models: l.e.Models})
			defer svc.Close()
			subjects := rep.Cohort.Subjects[:min(200, n)]
			res, err := svc.Score(ctx, l.bank.Name, scoring.ScoreRequest{Model: id, Subjects: subjects})
			if err != nil {
				t.Fatal(err)
			}
			bins := map[string]bool{}
			if mod.Scorecard != nil {
				for _, c := range mod.Scorecard.Characteristics {
					for _, a := range c.Attributes {
						bins[c.Feature+": "+a.Label] = true
					}
				}
			}
			reasons := 0
			for i, r := range res.Results {
				if r.Refused != "" || r.PD == nil || r.Score == nil {
					t.Fatalf("subject %d: %+v", i, r)
				}
				x := rep.Cohort.XTrain.RawRowView(i)
				want := mod.Answer(x)
				if *r.PD != want.PD || *r.Score != want.Score || strings.Join(r.Reasons, "|") != strings.Join(want.Reasons, "|") {
					t.Fatalf("subject %d: served %v %v %q, the registered model on the cohort's row %+v", i, *r.PD, *r.Score, r.Reasons, want)
				}
				if got := released[subjects[i]]; math.Abs(*r.PD-got) > mod.ProbabilityStep/2+scoreStep/2+1e-12 {
					t.Fatalf("subject %d: served pd %v, released score %v", i, *r.PD, got)
				}
				for _, code := range r.Reasons {
					if !bins[code] {
						t.Fatalf("subject %d: reason %q names no released bin", i, code)
					}
				}
				reasons += len(r.Reasons)
			}
			if mod.Scorecard != nil && reasons == 0 {
				t.Error("no subject got a reason code")
			}
			t.Logf("%s: %d subjects served as released; model reads %d of %d inputs; %d reason codes", tc.plugin, len(subjects),
				len(mod.UsedInputs()), len(mod.Inputs), reasons)
		})
	}
}
