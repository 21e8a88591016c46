package suite

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Row statuses.
const (
	StatusOK      = "ok"
	StatusSkipped = "skipped"
	StatusFailed  = "failed"
)

// Row is one case's figures. A nil figure is an empty cell, and Notes says why under the name of
// its JSON field.
type Row struct {
	ID       string `json:"id"`
	Workload string `json:"workload"`
	Data     string `json:"data"`
	Method   string `json:"method"`
	Kind     Kind   `json:"kind"`
	// Path says how the case ran: "enclave job (strict sandbox)", "in-process", "python", ….
	Path string `json:"path,omitempty"`
	// Isolation says how the resources were measured: "child process" or "in-process".
	Isolation string `json:"isolation,omitempty"`
	// Status is ok, skipped or failed; Reason says why a case was skipped or failed.
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`

	// Train, Test and Features are the sizes the model saw (model rows).
	Train    *int `json:"train"`
	Test     *int `json:"test"`
	Features *int `json:"features"`
	// AUC and KS are measured on the test rows (ID % 5 == 0).
	AUC *float64 `json:"auc"`
	KS  *float64 `json:"ks"`
	// Epsilon and Delta are the differential-privacy cost; Refreshes the HE refreshes the enclave
	// served; Decrypted the values the enclave decrypted and released.
	Epsilon   *float64 `json:"epsilon"`
	Delta     *float64 `json:"delta"`
	Refreshes *int     `json:"refreshes"`
	Decrypted *int     `json:"decrypted"`
	// FitS is the training time alone (the model's fit, as the baselines report it).
	FitS *float64 `json:"fit_s"`
	// WallS, CPUS (user + system, children included) and PeakRSSMB (the largest resident set of the
	// case's process and its descendants) are measured around the whole case.
	WallS     *float64 `json:"wall_s"`
	CPUS      *float64 `json:"cpu_s"`
	PeakRSSMB *float64 `json:"peak_rss_mb"`
	// Extra holds the workload's own figures (units in the key: _s, _ms, _mb, _mb_per_s).
	Extra map[string]float64 `json:"extra,omitempty"`
	// Notes explains empty cells and caveats, by field name.
	Notes map[string]string `json:"notes,omitempty"`
}

func (r *Row) setResources(wall, cpu time.Duration, maxrssKB int64) {
	r.WallS = fp(wall.Seconds())
	r.CPUS = fp(cpu.Seconds())
	r.PeakRSSMB = fp(float64(maxrssKB) / 1024)
}

func (r *Row) finish(err error) {
	switch {
	case err != nil:
		r.Status, r.Reason = StatusFailed, err.Error()
	case r.Status == "":
		r.Status = StatusOK
	}
}

// Note records why field is empty or what to know about it.
func (r *Row) Note(field, text string) {
	if r.Notes == nil {
		r.Notes = map[string]string{}
	}
	r.Notes[field] = text
}

// SetExtra records a workload-specific figure.
func (r *Row) SetExtra(key string, v float64) {
	if r.Extra == nil {
		r.Extra = map[string]float64{}
	}
	r.Extra[key] = v
}

// fillNotes gives every empty cell of the row a reason.
func (r *Row) fillNotes() {
	if r.Notes == nil {
		r.Notes = map[string]string{}
	}
	why := func(field string, empty bool, reason string) {
		if empty && r.Notes[field] == "" {
			r.Notes[field] = reason
		}
	}
	if r.Status != StatusOK {
		return
	}
	if r.Kind == KindSystem {
		for _, f := range []string{"auc", "ks", "epsilon", "refreshes", "decrypted", "train", "test"} {
			if r.Notes[f] == "" && !r.has(f) {
				r.Notes[f] = "not a model: time and memory only"
			}
		}
		return
	}
	why("auc", r.AUC == nil, "not measured")
	why("ks", r.KS == nil, "not measured")
	why("epsilon", r.Epsilon == nil, "no differential privacy in this method")
	why("refreshes", r.Refreshes == nil, "no homomorphic encryption in this method")
	why("decrypted", r.Decrypted == nil, "nothing encrypted, nothing decrypted")
	why("fit_s", r.FitS == nil, "not measured separately")
}

func (r *Row) has(field string) bool {
	switch field {
	case "auc":
		return r.AUC != nil
	case "ks":
		return r.KS != nil
	case "epsilon":
		return r.Epsilon != nil
	case "refreshes":
		return r.Refreshes != nil
	case "decrypted":
		return r.Decrypted != nil
	case "train":
		return r.Train != nil
	case "test":
		return r.Test != nil
	}
	return false
}

func (r *Row) summary() string {
	if r.Status != StatusOK {
		return r.Status + ": " + r.Reason
	}
	var b strings.Builder
	if r.AUC != nil {
		fmt.Fprintf(&b, "AUC %.4f  KS %.4f  ", *r.AUC, deref(r.KS))
	}
	fmt.Fprintf(&b, "wall %.2f s  CPU %.2f s  peak %.0f MB", deref(r.WallS), deref(r.CPUS), deref(r.PeakRSSMB))
	if r.Path != "" {
		fmt.Fprintf(&b, "  (%s)", r.Path)
	}
	return b.String()
}

func fp(v float64) *float64 { return &v }
func ip(v int) *int         { return &v }

func deref[T any](p *T) T {
	var z T
	if p == nil {
		return z
	}
	return *p
}

// Report is the JSON report of a run (schema SchemaVersion; see the package doc).
type Report struct {
	Schema   string    `json:"schema"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Command  string    `json:"command,omitempty"`
	Config   struct {
		Suite       []string `json:"suite"`
		Data        string   `json:"data"`
		Quick       bool     `json:"quick"`
		Enterprises int      `json:"enterprises,omitempty"`
		HEPath      string   `json:"he_path"`
		HEParams    string   `json:"he_params"`
		InProcess   bool     `json:"in_process"`
	} `json:"config"`
	// Seeds are every seed the run used, by what they seed.
	Seeds   map[string]uint64 `json:"seeds"`
	Split   string            `json:"split"`
	Machine Machine           `json:"machine"`
	Build   Build             `json:"build"`
	Python  PythonInfo        `json:"python"`
	Data    []DataSet         `json:"data"`
	Rows    []Row             `json:"rows"`
}

// Machine describes where the run happened.
type Machine struct {
	OS         string     `json:"os"`
	Arch       string     `json:"arch"`
	Kernel     string     `json:"kernel,omitempty"`
	CPUModel   string     `json:"cpu_model"`
	Cores      int        `json:"cores"`
	GOMAXPROCS int        `json:"gomaxprocs"`
	MemoryMB   int64      `json:"memory_mb"`
	Root       bool       `json:"root"`
	LoadStart  [3]float64 `json:"load_average_start"`
	LoadEnd    [3]float64 `json:"load_average_end"`
}

// Build describes the binary that ran: Go, the module's dependencies and the source commit.
type Build struct {
	Go       string            `json:"go"`
	Module   string            `json:"module"`
	Commit   string            `json:"commit,omitempty"`
	Modified bool              `json:"modified,omitempty"`
	Deps     map[string]string `json:"deps"`
}

func newReport(cfg *Config) *Report {
	r := &Report{Schema: SchemaVersion, Started: time.Now().UTC().Truncate(time.Second), Command: cfg.Command}
	r.Config.Suite = cfg.Suite
	if len(r.Config.Suite) == 0 {
		r.Config.Suite = Workloads()
	}
	r.Config.Data = cfg.Data
	if cfg.Data == "" {
		r.Config.Data = "synthetic"
		r.Config.Enterprises = cfg.Enterprises
	}
	r.Config.Quick, r.Config.HEPath, r.Config.InProcess = cfg.Quick, cfg.HEPath, cfg.InProcess
	r.Config.HEParams = "he.DefaultLiteral (log N 14, real-only, log QP 431, 128-bit)"
	if cfg.HEParams != nil {
		b, _ := json.Marshal(cfg.HEParams)
		r.Config.HEParams = string(b)
	}
	r.Seeds = map[string]uint64{"synthetic": cfg.Seed, "psi": cfg.Seed, "gbdt": 0, "python": 0}
	r.Split = "test = rows whose id % 5 == 0, train = the rest (../shared/baselines/plaintext.py); " +
		"synthetic ids number the bank's labelled borrowers 1..n in labels.csv order"
	r.Machine = machine()
	r.Build = build()
	return r
}

func (r *Report) finish([]string) {
	r.Finished = time.Now().UTC().Truncate(time.Second)
	r.Machine.LoadEnd = loadAvg()
}

func machine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Root: os.Geteuid() == 0, LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if m.CPUModel == "" {
		m.CPUModel = "unknown (" + runtime.GOARCH + ")"
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.MemoryMB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

// namedDeps are the libraries whose versions the report records.
var namedDeps = []string{
	"github.com/tuneinsight/lattigo/v5", "github.com/apache/arrow/go/v17", "gonum.org/v1/gonum",
	"github.com/cloudflare/circl", "github.com/hashicorp/go-plugin", "google.golang.org/grpc",
	"modernc.org/sqlite", "github.com/spf13/cobra",
}

func build() Build {
	b := Build{Go: runtime.Version(), Deps: map[string]string{}}
	if bi, ok := debug.ReadBuildInfo(); ok {
		b.Module = bi.Main.Path
		for _, d := range bi.Deps {
			for _, n := range namedDeps {
				if d.Path == n {
					b.Deps[n] = d.Version
				}
			}
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Commit == "" {
		// go run and go test do not stamp the revision: ask git, when there is one.
		if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
			b.Commit = strings.TrimSpace(string(out))
			if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
				b.Modified = len(bytes.TrimSpace(st)) > 0
			}
		}
	}
	return b
}

// Write writes the report as bench-<time>.json and bench-<time>.md into dir and returns both paths.
func (r *Report) Write(dir string) (jsonPath, mdPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("bench: %w", err)
	}
	base := filepath.Join(dir, "bench-"+r.Started.Format("20060102T150405Z"))
	jsonPath, mdPath = base+".json", base+".md"
	if err := writeJSON(jsonPath, r); err != nil {
		return "", "", fmt.Errorf("bench: %w", err)
	}
	var md bytes.Buffer
	r.Markdown(&md)
	if err := os.WriteFile(mdPath, md.Bytes(), 0o644); err != nil {
		return "", "", fmt.Errorf("bench: %w", err)
	}
	return jsonPath, mdPath, nil
}

// ReadReport reads a JSON report and checks its schema.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	if r.Schema != SchemaVersion {
		return nil, fmt.Errorf("bench: %s has schema %q, this insitu reads %q", path, r.Schema, SchemaVersion)
	}
	return &r, nil
}
