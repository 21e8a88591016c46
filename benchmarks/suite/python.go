package suite

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

//go:embed baseline.py
var baselinePy []byte

// PythonInfo says whether the scikit-learn and xgboost baselines run, with which versions.
type PythonInfo struct {
	Path      string `json:"path"`
	Available bool   `json:"available"`
	Sklearn   string `json:"sklearn,omitempty"`
	XGBoost   string `json:"xgboost,omitempty"`
	NumPy     string `json:"numpy,omitempty"`
	// Note says why a baseline is missing (an interpreter or a package not installed).
	Note string `json:"note,omitempty"`
}

func probePython(ctx context.Context, path string) PythonInfo {
	info := PythonInfo{Path: path}
	if path == "-" {
		info.Note = "Python baselines turned off (--python -)"
		return info
	}
	if _, err := os.Stat(path); err != nil {
		info.Note = fmt.Sprintf("%s not found: install Debian's python3, python3-sklearn and python3-xgboost", path)
		return info
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-c", string(baselinePy), "versions").Output()
	if err != nil {
		info.Note = fmt.Sprintf("%s failed to start: %v", path, err)
		return info
	}
	var v map[string]string
	if err := json.Unmarshal(out, &v); err != nil {
		info.Note = fmt.Sprintf("%s: unreadable answer: %v", path, err)
		return info
	}
	info.Sklearn, info.XGBoost, info.NumPy = v["sklearn"], v["xgboost"], v["numpy"]
	info.Available = info.Sklearn != "" && info.NumPy != ""
	switch {
	case info.Sklearn == "":
		info.Note = "scikit-learn is not importable (apt-get install python3-sklearn)"
	case info.XGBoost == "":
		info.Note = "xgboost is not importable (apt-get install python3-xgboost): its rows are skipped"
	}
	return info
}

// pythonCase is a baseline row computed by Debian's Python: model "lr" (scikit-learn logistic
// regression, standardised, C = 1) or "xgb" (xgboost hist, 200 trees, depth 4, η 0.1).
func pythonCase(env *Env, workload, data, model string) Case {
	method := map[string]string{"lr": "scikit-learn LR (standardised, C=1)", "xgb": "xgboost hist (200 trees, depth 4, η 0.1)"}[model]
	c := Case{ID: workload + "/" + data + "/" + model + "-python", Data: data, Method: method, Kind: KindModel}
	switch {
	case !env.Python.Available:
		c.Skip = env.Python.Note
		return c
	case model == "xgb" && env.Python.XGBoost == "":
		c.Skip = "xgboost is not importable (apt-get install python3-xgboost)"
		return c
	}
	var flat string
	for _, s := range env.Sets {
		if s.Name == data {
			flat = s.Flat
		}
	}
	c.Command = func(env *Env) (*exec.Cmd, error) {
		script := filepath.Join(env.Config.WorkDir, "baseline.py")
		if err := os.WriteFile(script, baselinePy, 0o644); err != nil {
			return nil, err
		}
		return exec.Command(env.Python.Path, script, model, flat), nil
	}
	c.Parse = func(out []byte, row *Row) error {
		var raw map[string]float64
		if err := json.Unmarshal(out, &raw); err != nil {
			return fmt.Errorf("python baseline: unreadable output: %w", err)
		}
		row.AUC, row.KS, row.FitS = fp(raw["auc"]), fp(raw["ks"]), fp(raw["fit_s"])
		row.Train, row.Test, row.Features = ip(int(raw["train"])), ip(int(raw["test"])), ip(int(raw["features"]))
		row.Path = "python"
		if model == "lr" {
			row.Note("auc", "caveat: missing values (where there are any) take the median of all rows, as ../shared/baselines/plaintext.py does")
		}
		return nil
	}
	return c
}

// runExternal runs a case's external command and measures it with wait4's rusage.
func runExternal(ctx context.Context, env *Env, c Case, row *Row) {
	cmd, err := c.Command(env)
	if err != nil {
		row.finish(err)
		return
	}
	start := time.Now()
	var stderr lineWriter
	stderr.w, stderr.prefix = env.Config.Progress, "      python: "
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	wall := time.Since(start)
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			row.setResources(wall, cpuDelta(syscall.Rusage{}, *ru), ru.Maxrss)
		}
	}
	row.Isolation = "child process"
	if err != nil {
		row.finish(fmt.Errorf("%s: %w", cmd.Path, err))
		return
	}
	row.finish(c.Parse(out, row))
	_ = ctx
}
