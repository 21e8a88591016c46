package suite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"insitu/enclave/he"
)

// SchemaVersion names the layout of the JSON report (see the package doc).
const SchemaVersion = "insitu-bench/v1"

// ErrConfig is wrapped by errors about the suite's configuration (an unknown workload, a data
// folder without any known data set).
var ErrConfig = errors.New("invalid benchmark configuration")

// Config is one run of the suite. Its JSON form is what a case's child process reads.
type Config struct {
	// Suite names the workloads to run, in order; empty runs every registered workload.
	Suite []string `json:"suite"`
	// Data is a folder laid out as ../shared/data (default_credit/UCI_Credit_Card.csv,
	// give_me_some_credit/cs-training.csv.gz); empty means synthetic data from connectors/synthetic.
	Data string `json:"data,omitempty"`
	// Out is the folder the report is written to (bench-<time>.json and .md).
	Out string `json:"out,omitempty"`
	// Quick runs smaller workloads: the Taiwan data only, 5,000 synthetic enterprises, PSI at
	// 10³ × 10⁴, three sandbox runs. Model settings do not change.
	Quick bool `json:"quick,omitempty"`
	// Seed seeds everything the suite draws (synthetic data, PSI identifiers); 1 when 0.
	Seed uint64 `json:"seed"`
	// Enterprises is the synthetic data's size; 20,000 (Quick: 5,000) when 0.
	Enterprises int `json:"enterprises,omitempty"`
	// Python is the interpreter of the scikit-learn and xgboost baselines; /usr/bin/python3 when
	// empty, none when "-".
	Python string `json:"python,omitempty"`
	// HEPath chooses how the HE workload runs: "auto" (the enclave's job path when this process can
	// start the strict sandbox, otherwise in-process), "job" or "in-process".
	HEPath string `json:"he_path,omitempty"`
	// HEParams replaces the production CKKS parameters (he.DefaultLiteral); tests pass a small
	// testInsecure… set.
	HEParams *he.Literal `json:"he_params,omitempty"`
	// HEIterations overrides the HE training's iterations (plugins/helr's default, 10, when 0).
	HEIterations int `json:"he_iterations,omitempty"`
	// HEL2 overrides the HE training's L2 penalty l2 (plugins/helr's default, 0.001, when 0); the
	// plaintext row of the same objective follows it.
	HEL2 float64 `json:"he_l2,omitempty"`
	// PSISizes are the (bank, platform) identifier counts of the PSI workload; 10⁵ × 10⁶ (Quick:
	// 10³ × 10⁴) when empty.
	PSISizes [][2]int `json:"psi_sizes,omitempty"`
	// SandboxRuns is the number of plugin runs the sandbox workload times; 10 (Quick: 3) when 0.
	SandboxRuns int `json:"sandbox_runs,omitempty"`
	// PluginBinary is a static insitu binary (served with "plugin serve-builtin NAME") or a folder
	// holding static builds of plugins/helr and plugins/logreg; found or built when empty.
	PluginBinary string `json:"plugin_binary,omitempty"`
	// InProcess runs every case in this process instead of a child process each. Peak memory then
	// mixes across cases (getrusage's high-water mark only grows): for debugging only.
	InProcess bool `json:"in_process,omitempty"`
	// WorkDir holds the prepared data and per-case files; a new temporary folder when empty.
	WorkDir string `json:"work_dir,omitempty"`

	// Progress receives one line per step while the suite runs; nil discards them.
	Progress io.Writer `json:"-"`
	// Child returns the command that runs one case in a child process of this program (see
	// RunCase); the parent adds nothing to it. Required unless InProcess.
	Child func(configFile, caseID, outFile string) *exec.Cmd `json:"-"`
	// Command is the command line recorded in the report.
	Command string `json:"-"`
}

func (c *Config) defaults() {
	if c.Data != "" {
		if abs, err := filepath.Abs(c.Data); err == nil {
			c.Data = abs
		}
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Enterprises == 0 {
		c.Enterprises = 20000
		if c.Quick {
			c.Enterprises = 5000
		}
	}
	if c.Python == "" {
		c.Python = "/usr/bin/python3"
	}
	if c.HEPath == "" {
		c.HEPath = "auto"
	}
	if len(c.PSISizes) == 0 {
		c.PSISizes = [][2]int{{100_000, 1_000_000}}
		if c.Quick {
			c.PSISizes = [][2]int{{1000, 10_000}}
		}
	}
	if c.SandboxRuns == 0 {
		c.SandboxRuns = 10
		if c.Quick {
			c.SandboxRuns = 3
		}
	}
}

// Workload is one kind of measurement of the suite (he-lr, scorecard, psi, …). A workload lists
// its cases for the run's data; each case gives one row of the report. Register makes a workload
// part of the suite.
type Workload interface {
	// Name is the workload's name on the command line: lower-case letters, digits and '-'.
	Name() string
	// Cases lists the workload's cases for env's data sets. It must be deterministic: a case's
	// child process calls it again to find its case by ID.
	Cases(env *Env) []Case
}

// Case is one row of the report: what it measures and how to run it.
type Case struct {
	// ID is unique within the run: "workload/data/method".
	ID string
	// Data names the data set ("taiwan", "gmsc", "synthetic") or the size ("bank=1e5_platform=1e6").
	Data string
	// Method names what is measured, e.g. "HE logistic regression" or "scikit-learn LR".
	Method string
	// Kind says which model columns apply: KindModel rows have AUC, KS and privacy cost;
	// KindSystem rows have time and memory only.
	Kind Kind
	// Skip, when set, is why the case cannot run on this machine or in this build; the row
	// records it and nothing runs.
	Skip string
	// Run measures the case inside the process that runs it (a child process of the suite unless
	// Config.InProcess) and fills the row's figures; the suite adds wall, CPU and peak memory.
	Run func(ctx context.Context, env *Env, row *Row) error
	// Command, instead of Run, names an external program (the Python baselines) that the suite
	// runs and measures itself; Parse reads its standard output into the row.
	Command func(env *Env) (*exec.Cmd, error)
	Parse   func(stdout []byte, row *Row) error
}

// Kind classifies rows.
type Kind string

const (
	KindModel  Kind = "model"
	KindSystem Kind = "system"
)

var (
	regMu    sync.Mutex
	registry []Workload
)

// Register adds a workload to the suite; the order of registration is the default order of a run.
// It panics when the name is taken (a programmer error).
func Register(w Workload) {
	regMu.Lock()
	defer regMu.Unlock()
	for _, x := range registry {
		if x.Name() == w.Name() {
			panic("suite: workload " + w.Name() + " registered twice")
		}
	}
	registry = append(registry, w)
}

// Workloads returns the registered workloads' names in order.
func Workloads() []string {
	regMu.Lock()
	defer regMu.Unlock()
	var out []string
	for _, w := range registry {
		out = append(out, w.Name())
	}
	return out
}

func lookup(name string) Workload {
	regMu.Lock()
	defer regMu.Unlock()
	for _, w := range registry {
		if w.Name() == name {
			return w
		}
	}
	return nil
}

// selected returns the workloads cfg names, in order.
func selected(cfg *Config) ([]Workload, error) {
	names := cfg.Suite
	if len(names) == 0 {
		names = Workloads()
	}
	var out []Workload
	for _, n := range names {
		w := lookup(n)
		if w == nil {
			return nil, fmt.Errorf("%w: unknown workload %q; the suite has %s", ErrConfig, n, strings.Join(Workloads(), ", "))
		}
		out = append(out, w)
	}
	return out, nil
}

// Run runs the suite: it prepares the data sets, runs every case of the selected workloads (each
// in a child process unless cfg.InProcess), and returns the report. Writing it is up to the caller
// (Report.Write).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	ws, err := selected(&cfg)
	if err != nil {
		return nil, err
	}
	if !cfg.InProcess && cfg.Child == nil {
		return nil, fmt.Errorf("%w: Config.Child is required to run cases in child processes", ErrConfig)
	}
	logf := progress(cfg.Progress)
	if cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "insitu-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.WorkDir = dir
	}
	// The sandboxed plugin (its own uid) must be able to reach the runner's folders inside.
	_ = os.Chmod(cfg.WorkDir, 0o711)
	rep := newReport(&cfg)
	logf("machine: %s, %d cores, %.1f GB; load average %.2f %.2f %.2f", rep.Machine.CPUModel, rep.Machine.Cores,
		float64(rep.Machine.MemoryMB)/1024, rep.Machine.LoadStart[0], rep.Machine.LoadStart[1], rep.Machine.LoadStart[2])
	env, err := prepare(ctx, &cfg, logf)
	if err != nil {
		return nil, err
	}
	rep.Data = env.Sets
	rep.Python = env.Python
	cfgFile := filepath.Join(cfg.WorkDir, "config.json")
	if err := writeJSON(cfgFile, &cfg); err != nil {
		return nil, err
	}
	var cases []Case
	for _, w := range ws {
		for _, c := range w.Cases(env) {
			c.ID = strings.TrimSpace(c.ID)
			cases = append(cases, c)
		}
	}
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.Name()
	}
	for i, c := range cases {
		workload := strings.SplitN(c.ID, "/", 2)[0]
		row := Row{ID: c.ID, Workload: workload, Data: c.Data, Method: c.Method, Kind: c.Kind, Notes: map[string]string{}}
		logf("[%d/%d] %s", i+1, len(cases), c.ID)
		switch {
		case c.Skip != "":
			row.Status, row.Reason = StatusSkipped, c.Skip
		case c.Command != nil:
			runExternal(ctx, env, c, &row)
		case cfg.InProcess:
			runInProcess(ctx, env, c, &row)
		default:
			runChild(ctx, &cfg, cfgFile, c, &row, i)
		}
		row.fillNotes()
		logf("      %s", row.summary())
		rep.Rows = append(rep.Rows, row)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	rep.finish(names)
	return rep, nil
}

// Env is what a case sees: the configuration, the prepared data sets and the Python baselines'
// availability.
type Env struct {
	Config *Config
	// Sets are the data sets of the run, in order.
	Sets []DataSet
	// Python says whether the scikit-learn and xgboost baselines can run, and why not.
	Python PythonInfo
	// Log writes a progress line (to the parent's progress output when in a child process).
	Log func(format string, args ...any)

	mu     sync.Mutex
	tables map[string]*Table
}

// Table loads the flat table of a data set (cached).
func (e *Env) Table(name string) (*Table, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t, ok := e.tables[name]; ok {
		return t, nil
	}
	for _, s := range e.Sets {
		if s.Name == name {
			t, err := ReadTable(s.Flat, name)
			if err != nil {
				return nil, err
			}
			if e.tables == nil {
				e.tables = map[string]*Table{}
			}
			e.tables[name] = t
			return t, nil
		}
	}
	return nil, fmt.Errorf("bench: no data set %q in this run", name)
}

// TempDir returns a new folder under the run's work folder, searchable by a sandboxed plugin.
func (e *Env) TempDir(pattern string) (string, error) {
	d, err := os.MkdirTemp(e.Config.WorkDir, pattern)
	if err != nil {
		return "", err
	}
	return d, os.Chmod(d, 0o711)
}

func progress(w io.Writer) func(string, ...any) {
	if w == nil {
		return func(string, ...any) {}
	}
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, format+"\n", args...)
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// runInProcess runs a case here; wall and CPU are this process's deltas, peak memory its
// high-water mark so far.
func runInProcess(ctx context.Context, env *Env, c Case, row *Row) {
	var before syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	var beforeC syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &beforeC)
	start := time.Now()
	err := c.Run(ctx, env, row)
	wall := time.Since(start)
	var after, afterC syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &afterC)
	row.setResources(wall, cpuDelta(before, after)+cpuDelta(beforeC, afterC), max(after.Maxrss, afterC.Maxrss))
	row.Isolation = "in-process (peak memory is the process's high-water mark so far)"
	row.finish(err)
}

func cpuDelta(a, b syscall.Rusage) time.Duration {
	d := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return d(b.Utime) - d(a.Utime) + d(b.Stime) - d(a.Stime)
}

// runChild runs a case in a child process and measures it with wait4's rusage: CPU of the child
// and every descendant it waited for, the largest resident set of any of them.
func runChild(ctx context.Context, cfg *Config, cfgFile string, c Case, row *Row, i int) {
	outFile := filepath.Join(cfg.WorkDir, fmt.Sprintf("case-%03d.json", i))
	cmd := cfg.Child(cfgFile, c.ID, outFile)
	cmd.Stdout = io.Discard
	cmd.Stderr = &lineWriter{w: cfg.Progress, prefix: "      "}
	start := time.Now()
	err := cmd.Start()
	if err == nil {
		stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Signal(os.Interrupt) })
		err = cmd.Wait()
		stop()
	}
	wall := time.Since(start)
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			row.setResources(wall, cpuDelta(syscall.Rusage{}, *ru), ru.Maxrss)
		}
	}
	row.Isolation = "child process"
	var child Row
	b, rerr := os.ReadFile(outFile)
	if rerr == nil {
		rerr = json.Unmarshal(b, &child)
	}
	if rerr != nil {
		if err == nil {
			err = rerr
		}
		row.finish(fmt.Errorf("case process: %w", err))
		return
	}
	child.WallS, child.CPUS, child.PeakRSSMB, child.Isolation = row.WallS, row.CPUS, row.PeakRSSMB, row.Isolation
	*row = child
}

// RunCase is the child side of a case: it reads the configuration the parent wrote, finds the
// case by ID, runs it and writes its row as JSON to outFile. Progress lines go to log.
func RunCase(ctx context.Context, configFile, caseID, outFile string, log io.Writer) error {
	var cfg Config
	b, err := os.ReadFile(configFile)
	if err != nil {
		return fmt.Errorf("bench case: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("bench case: %s: %w", configFile, err)
	}
	cfg.defaults()
	ws, err := selected(&cfg)
	if err != nil {
		return err
	}
	env, err := reopen(&cfg, progress(log))
	if err != nil {
		return err
	}
	for _, w := range ws {
		for _, c := range w.Cases(env) {
			if c.ID != caseID {
				continue
			}
			row := Row{ID: c.ID, Workload: w.Name(), Data: c.Data, Method: c.Method, Kind: c.Kind, Notes: map[string]string{}}
			if c.Run == nil {
				row.finish(fmt.Errorf("case %s runs no code of its own", c.ID))
			} else {
				row.finish(c.Run(ctx, env, &row))
			}
			return writeJSON(outFile, &row)
		}
	}
	return fmt.Errorf("bench case: no case %q in workloads %v", caseID, cfg.Suite)
}

// lineWriter prefixes every line a child writes and passes it on.
type lineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	if l.w == nil {
		return len(p), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := slices.Index(l.buf, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(l.w, "%s%s\n", l.prefix, l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
