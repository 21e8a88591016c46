package model_test

import (
	"math"
	"testing"

	"insitu/modeling/helr"
	"insitu/plugins/helr/model"
	"insitu/plugins/sdk"
	"insitu/plugins/sdk/host"
	"insitu/plugins/sdk/plugintest"
)

// Through the real plugin transport (gRPC, chunked Arrow stream, the refresh service over the
// multiplexed broker), a run decrypts to the plaintext mirror's weights within 1e-7.
func TestTrainOverTransport(t *testing.T) {
	ds := synthetic(1500, 4, 4)
	k := newKeyHolder(t, testInsecureLogN10RealOnly)
	hp := sdk.MustHyperparameters(map[string]any{"iterations": 3})
	out, err := plugintest.Train(t, model.New(), host.TrainRequest{
		Mode: sdk.ModeHE, Rows: k.pack(t, ds), Features: ds.names, Label: sdk.HELabel, Subject: "subject",
		Hyperparameters: hp, HE: k,
	})
	if err != nil {
		t.Fatal(err)
	}
	w, b := k.weights(t, ds, out)
	cfg := helr.DefaultConfig()
	cfg.Iterations = 3
	ref, err := helr.Fit(ds.cols, ds.y, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := maxDiff(w, b, ref); diff > 1e-7 || math.IsNaN(diff) {
		t.Errorf("encrypted %v %v, plaintext %v %v: max difference %.2e > 1e-7", w, b, ref.Weights, ref.Intercept, diff)
	}
	if got := k.calls.Load(); got != 10 {
		t.Errorf("%d refreshes over the broker, want 10", got)
	}
}
