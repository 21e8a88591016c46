package suite

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cloudflare/circl/group"

	"insitu/connectors"
	"insitu/connectors/ident"
	"insitu/enclave/dataset"
	"insitu/enclave/pluginstore"
	"insitu/enclave/psi"
	"insitu/enclave/runner"
	"insitu/enclave/sandbox"
	"insitu/plugins/sdk"
)

// psiWorkload is entity alignment (issue 8): ECDH-PSI over ristretto255, both parties in this
// process (psi.Local: every message encoded and decoded), next to the floor — the group operations
// alone for the same counts, in the same process.
type psiWorkload struct{}

func (psiWorkload) Name() string { return "psi" }

func (psiWorkload) Cases(env *Env) []Case {
	var out []Case
	for _, sz := range env.Config.PSISizes {
		nb, np := sz[0], sz[1]
		name := fmt.Sprintf("bank=%s_platform=%s", sci(nb), sci(np))
		out = append(out, Case{ID: "psi/" + name + "/ecdh", Data: name, Kind: KindSystem,
			Method: "ECDH-PSI over ristretto255 (psi.Local)", Run: func(ctx context.Context, env *Env, row *Row) error {
				return runPSI(ctx, env, nb, np, row)
			}})
	}
	return out
}

func sci(n int) string {
	e := math.Log10(float64(n))
	if e == math.Trunc(e) {
		return fmt.Sprintf("1e%d", int(e))
	}
	return fmt.Sprint(n)
}

// psiSets draws nb bank and np platform credit codes from seed, half of the bank's on the platform.
func psiSets(nb, np int, seed uint64) (bank, platform []string) {
	r := mrand.New(mrand.NewPCG(seed, uint64(nb)<<32|uint64(np)))
	seen := make(map[string]bool, nb+np)
	fresh := func() string {
		for {
			s := ident.NewUSCC(r, "350100")
			if !seen[s] {
				seen[s] = true
				return s
			}
		}
	}
	platform = make([]string, np)
	for i := range platform {
		platform[i] = fresh()
	}
	bank = make([]string, nb)
	for i := range bank {
		if i%2 == 0 && i/2 < np {
			bank[i] = platform[i/2*7%np]
		} else {
			bank[i] = fresh()
		}
	}
	return bank, platform
}

type psiSource struct{ ids []string }

func (s psiSource) AuthorizedSubjects(context.Context, psi.Query) (*psi.Set, error) {
	return &psi.Set{Kind: ident.KindUSCC, Version: 1, Subjects: s.ids}, nil
}

func runPSI(ctx context.Context, env *Env, nb, np int, row *Row) error {
	bank, platform := psiSets(nb, np, env.Config.Seed)
	env.Log("PSI: %d bank × %d platform identifiers", nb, np)
	c0 := selfCPU()
	start := time.Now()
	srv := psi.NewServer(psiSource{platform}, psi.Options{MaxElements: nb})
	cl := &psi.Client{Transport: psi.Local{Server: srv, Bank: "bench-bank"}}
	last := time.Now()
	cl.Progress = func(p psi.Progress) {
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			env.Log("PSI: %+v", p)
		}
	}
	s, err := cl.Open(ctx, psi.Request{Dataset: "bench", Purpose: "model_development"})
	if err != nil {
		return err
	}
	res, err := s.Intersect(ctx, bank)
	if err != nil {
		return err
	}
	wall, cpu := time.Since(start), selfCPU()-c0
	want := min((nb+1)/2, np)
	if len(res.Matched) != want {
		return fmt.Errorf("PSI matched %d identifiers, want %d", len(res.Matched), want)
	}
	env.Log("PSI: %.1f s; the floor (group operations alone) next", wall.Seconds())
	f0 := selfCPU()
	fl := psiFloor(nb, np)
	flCPU := selfCPU() - f0
	row.Path = "in-process, both parties"
	row.FitS = fp(wall.Seconds())
	row.Note("fit_s", "caveat: the protocol alone, without drawing the identifiers and without the floor measured after it")
	row.SetExtra("protocol_s", wall.Seconds())
	row.SetExtra("protocol_cpu_s", cpu.Seconds())
	row.SetExtra("floor_s", fl.Seconds())
	row.SetExtra("ratio_wall", wall.Seconds()/fl.Seconds())
	row.SetExtra("ratio_cpu", cpu.Seconds()/flCPU.Seconds())
	row.SetExtra("matched", float64(len(res.Matched)))
	return nil
}

// psiFloor runs the group operations of an intersection of nb by np identifiers and nothing else,
// on all cores: for each bank identifier hash-to-group, ·a, encode, decode, ·b, encode, decode, ·a⁻¹,
// encode; for each platform identifier hash-to-group, ·b, encode.
func psiFloor(nb, np int) time.Duration {
	g := group.Ristretto255
	a, b := g.RandomNonZeroScalar(rand.Reader), g.RandomNonZeroScalar(rand.Reader)
	aInv := g.NewScalar().Inv(a)
	dst := psi.DST(ident.KindUSCC)
	start := time.Now()
	par := func(n int, f func(i int)) {
		w := runtime.GOMAXPROCS(0)
		var wg sync.WaitGroup
		for k := range w {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := k * n / w; i < (k+1)*n/w; i++ {
					f(i)
				}
			}()
		}
		wg.Wait()
	}
	codec := func(e group.Element) group.Element {
		enc, _ := e.MarshalBinary()
		d := g.NewElement()
		_ = d.UnmarshalBinary(enc)
		return d
	}
	par(nb, func(i int) {
		e := g.HashToElement([]byte(fmt.Sprint(i)), dst)
		e = codec(e.Mul(e, a))
		e = codec(e.Mul(e, b))
		e.Mul(e, aInv)
		_, _ = e.MarshalBinary()
	})
	par(np, func(i int) {
		e := g.HashToElement([]byte(fmt.Sprint(i)), dst)
		e.Mul(e, b)
		_, _ = e.MarshalBinary()
	})
	return time.Since(start)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ingestWorkload times connectors → encrypted dataset (enclave/dataset) on the run's original data:
// the public files with a mapping of every column, or the synthetic providers' files.
type ingestWorkload struct{}

func (ingestWorkload) Name() string { return "ingest" }

func (ingestWorkload) Cases(env *Env) []Case {
	var out []Case
	for _, s := range env.Sets {
		set := s
		out = append(out, Case{ID: "ingest/" + s.Name + "/dataset", Data: s.Name, Kind: KindSystem,
			Method: "connectors CSV → encrypted versioned dataset", Run: func(ctx context.Context, env *Env, row *Row) error {
				return runIngest(ctx, env, set, row)
			}})
	}
	return out
}

func runIngest(ctx context.Context, env *Env, set DataSet, row *Row) error {
	dir, err := env.TempDir("ingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var specFile string
	var inputs []string
	if set.SynthDir != "" {
		specFile = filepath.Join(set.SynthDir, "dataset.yaml")
		srcs, _ := filepath.Glob(filepath.Join(set.SynthDir, "sources", "*"))
		inputs = srcs
	} else {
		if specFile, err = writeOriginalSpec(dir, set); err != nil {
			return err
		}
		inputs = []string{set.Original}
	}
	spec, maps, err := connectors.LoadDatasetSpec(specFile)
	if err != nil {
		return err
	}
	store, err := openStore(filepath.Join(dir, "store"))
	if err != nil {
		return err
	}
	var bytesIn int64
	for _, p := range inputs {
		if st, err := os.Stat(p); err == nil {
			bytesIn += st.Size()
		}
	}
	start := time.Now()
	m, rep, err := store.Ingest(ctx, spec, maps, dataset.IngestOptions{})
	if err != nil {
		return err
	}
	wall := time.Since(start)
	row.Path = "in-process"
	row.FitS = fp(wall.Seconds())
	row.Note("fit_s", "caveat: the ingest alone (parse, validate, quality report, encrypt, write)")
	row.SetExtra("subjects", float64(m.Subjects))
	row.SetExtra("columns", float64(len(m.Columns)-1))
	row.SetExtra("input_mb", float64(bytesIn)/1e6)
	row.SetExtra("mb_per_s", float64(bytesIn)/1e6/wall.Seconds())
	row.SetExtra("rows_rejected", float64(rep.RowsRejected))
	return nil
}

// writeOriginalSpec maps every column of a public file but its id to a float custom field (the
// label included: it is a column of the public file).
func writeOriginalSpec(dir string, set DataSet) (string, error) {
	t, err := LoadCSV(set.Original, set.Name, set.IDColumn, set.LabelColumn)
	if err != nil {
		return "", err
	}
	idCol := set.IDColumn
	if idCol == "" {
		idCol = "#1"
	}
	var mb strings.Builder
	fmt.Fprintf(&mb, "source: original\nprovider: public\nformat: csv\npath: %q\ncsv:\n  null: [\"NA\", \"\"]\n", set.Original)
	fmt.Fprintf(&mb, "subject:\n  column: %q\n  kind: opaque\ncolumns:\n", idCol)
	cols := append([]string{set.LabelColumn}, t.Names...)
	for _, n := range cols {
		fmt.Fprintf(&mb, "  - {column: %q, field: custom.%s}\n", n, csvName(n))
	}
	mb.WriteString("custom_fields:\n")
	for _, n := range cols {
		fmt.Fprintf(&mb, "  - {key: %s, type: float, sensitivity: 1}\n", csvName(n))
	}
	if err := os.WriteFile(filepath.Join(dir, "mapping.yaml"), []byte(mb.String()), 0o644); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "dataset.yaml")
	spec := fmt.Sprintf("dataset: ingest-%s\nclass: public\nsubject: opaque\nmappings: [mapping.yaml]\n", set.Name)
	return path, os.WriteFile(path, []byte(spec), 0o644)
}

// sandboxWorkload times the runner: the reference logreg plugin run in the strict sandbox on the
// first data set (plaintext public mode), several times; start to the first RPC and the whole run.
type sandboxWorkload struct{}

func (sandboxWorkload) Name() string { return "sandbox" }

func (sandboxWorkload) Cases(env *Env) []Case {
	if len(env.Sets) == 0 {
		return nil
	}
	set := env.Sets[0]
	c := Case{ID: "sandbox/" + set.Name + "/logreg-plugin", Data: set.Name, Kind: KindSystem,
		Method: fmt.Sprintf("plugins/logreg in the strict sandbox, %d runs", env.Config.SandboxRuns),
		Run: func(ctx context.Context, env *Env, row *Row) error {
			return runSandbox(ctx, env, set, row)
		}}
	switch {
	case runtime.GOOS != "linux" || os.Geteuid() != 0:
		c.Skip = "the sandbox needs root on Linux (namespaces, cgroups, a dedicated uid)"
	case env.Config.PluginBinary == "":
		c.Skip = "no static plugin binary: build insitu with CGO_ENABLED=0, or run from the source tree with the go tool"
	}
	return []Case{c}
}

func runSandbox(ctx context.Context, env *Env, set DataSet, row *Row) error {
	bin, args, err := pluginBinary(env.Config, "logreg")
	if err != nil {
		return err
	}
	t, err := env.Table(set.Name)
	if err != nil {
		return err
	}
	dir, err := env.TempDir("sandbox-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	spec, err := writeFlatSpec(dir, set, t, true)
	if err != nil {
		return err
	}
	s, maps, err := connectors.LoadDatasetSpec(spec)
	if err != nil {
		return err
	}
	dd, err := openDir(filepath.Join(dir, "store"))
	if err != nil {
		return err
	}
	store, err := dataset.Open(dd)
	if err != nil {
		return err
	}
	m, _, err := store.Ingest(ctx, s, maps, dataset.IngestOptions{})
	if err != nil {
		return err
	}
	d, err := pluginstore.OpenIn(dd, pluginstore.Options{})
	if err != nil {
		return err
	}
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	info, _, err := d.Put(ctx, f, pluginstore.Meta{Name: "logreg", Uploader: "bench"})
	f.Close()
	if err != nil {
		return err
	}
	runDir, err := runTempDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(runDir)
	var starts, walls []float64
	var streamed int64
	var pluginCPU, pluginPeak float64
	for i := range env.Config.SandboxRuns {
		res, err := runner.Run(ctx, runner.RunSpec{
			Plugins: d, Digest: info.Digest, Mode: sdk.ModePlaintextPublic, Args: args, TempDir: runDir,
			Input:           &runner.PlainInput{Datasets: store, Dataset: m.Name, LabelColumn: "custom.label"},
			Hyperparameters: sdk.MustHyperparameters(map[string]any{"lambda": 1}),
			Sandbox:         sandbox.Spec{Limits: sandbox.Limits{WallClock: 10 * time.Minute, Memory: 4 << 30}},
		})
		if err != nil {
			return err
		}
		if err := res.Err(); err != nil {
			return err
		}
		starts = append(starts, res.StartToDescribe.Seconds()*1000)
		walls = append(walls, res.Wall.Seconds())
		if res.Input != nil {
			streamed = res.Input.Bytes
		}
		if p := res.Process; p != nil {
			pluginCPU += p.CPUTime.Seconds()
			pluginPeak = max(pluginPeak, float64(p.MaxRSS)/(1<<20))
		}
		row.Path = "runner.Run, " + res.SandboxMode.String() + " sandbox"
		env.Log("run %d/%d: start to first RPC %.0f ms, whole run %.2f s", i+1, env.Config.SandboxRuns, starts[i], walls[i])
	}
	row.Note("fit_s", "the runs' own figures are in the details: start to first RPC and the whole run")
	row.SetExtra("start_to_first_rpc_ms_median", median(starts))
	row.SetExtra("start_to_first_rpc_ms_max", slicesMax(starts))
	row.SetExtra("run_s_median", median(walls))
	row.SetExtra("streamed_mb", float64(streamed)/1e6)
	row.SetExtra("plugin_cpu_s_per_run", pluginCPU/float64(len(walls)))
	row.SetExtra("plugin_peak_mb", pluginPeak)
	row.SetExtra("rows", float64(t.Len()))
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	return s[len(s)/2]
}

func slicesMax(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
