package suite

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Markdown writes the report as a Markdown page: the machine and build, one table of every row,
// and the numbered reasons of the empty cells under it.
func (r *Report) Markdown(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "# insitu bench, %s\n\n", r.Started.Format("2006-01-02 15:04 UTC"))
	if r.Command != "" {
		fmt.Fprintf(w, "Command: `%s`\n\n", r.Command)
	}
	fmt.Fprintf(w, "Machine: %s, %d cores (GOMAXPROCS %d), %.1f GB, %s/%s %s; load average %.2f %.2f %.2f at the start, %.2f %.2f %.2f at the end.\n\n",
		m.CPUModel, m.Cores, m.GOMAXPROCS, float64(m.MemoryMB)/1024, m.OS, m.Arch, m.Kernel,
		m.LoadStart[0], m.LoadStart[1], m.LoadStart[2], m.LoadEnd[0], m.LoadEnd[1], m.LoadEnd[2])
	b := r.Build
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	} else if b.Modified {
		commit += " (with uncommitted changes)"
	}
	fmt.Fprintf(w, "Build: %s, commit %s; lattigo %s, arrow %s, gonum %s, circl %s.\n\n", b.Go, commit,
		b.Deps["github.com/tuneinsight/lattigo/v5"], b.Deps["github.com/apache/arrow/go/v17"], b.Deps["gonum.org/v1/gonum"],
		b.Deps["github.com/cloudflare/circl"])
	py := "not available: " + r.Python.Note
	if r.Python.Available {
		py = fmt.Sprintf("%s (scikit-learn %s, xgboost %s)", r.Python.Path, orDash(r.Python.Sklearn), orDash(r.Python.XGBoost))
		if r.Python.Note != "" {
			py += "; " + r.Python.Note
		}
	}
	fmt.Fprintf(w, "Baselines: %s. Split: %s. Seed %d.\n\n", py, r.Split, r.Seeds["synthetic"])
	for _, d := range r.Data {
		fmt.Fprintf(w, "- %s: %s — %d rows (%d train, %d test), %d features\n", d.Name, d.Source, d.Rows, d.Train, d.Test, d.Features)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| workload | data | method | path | train / test | AUC | KS | ε | refreshes | decrypted | fit s | wall s | CPU s | peak MB | details |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	notes := &footnotes{index: map[string]int{}}
	for i := range r.Rows {
		row := &r.Rows[i]
		cell := func(field string, v string, ok bool) string {
			if ok {
				if n := row.Notes[field]; n != "" && row.Status == StatusOK && strings.HasPrefix(n, "caveat: ") {
					return v + notes.ref(strings.TrimPrefix(n, "caveat: "))
				}
				return v
			}
			reason := row.Notes[field]
			if row.Status != StatusOK {
				reason = row.Status + ": " + row.Reason
			}
			if reason == "" {
				reason = "not measured"
			}
			return "–" + notes.ref(reason)
		}
		f4 := func(field string, p *float64) string {
			if p == nil {
				return cell(field, "", false)
			}
			return cell(field, fmt.Sprintf("%.4f", *p), true)
		}
		f2 := func(field string, p *float64) string {
			if p == nil {
				return cell(field, "", false)
			}
			return cell(field, fmtNum(*p), true)
		}
		in := func(field string, p *int) string {
			if p == nil {
				return cell(field, "", false)
			}
			return cell(field, fmt.Sprint(*p), true)
		}
		size := "–"
		if row.Train != nil || row.Test != nil {
			size = fmt.Sprintf("%s / %s", intOr(row.Train), intOr(row.Test))
		} else {
			size = cell("train", "", false)
		}
		eps := f2("epsilon", row.Epsilon)
		if row.Epsilon != nil && math.IsInf(*row.Epsilon, 1) {
			eps = "∞"
		}
		path := row.Path
		if path == "" {
			path = "–"
		}
		if n := row.Notes["path"]; n != "" {
			path += notes.ref(n)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			row.Workload, row.Data, row.Method, path, size, f4("auc", row.AUC), f4("ks", row.KS), eps,
			in("refreshes", row.Refreshes), in("decrypted", row.Decrypted), f2("fit_s", row.FitS),
			f2("wall_s", row.WallS), f2("cpu_s", row.CPUS), f2("peak_rss_mb", row.PeakRSSMB), details(row))
	}
	fmt.Fprintln(w)
	for i, n := range notes.list {
		fmt.Fprintf(w, "%d. %s\n", i+1, n)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Wall and CPU time (user + system, descendants included) and peak memory (the largest resident set of the case's process or any descendant, from wait4's rusage) are measured around each case, which runs in a child process of its own; fit s is the model's training alone. AUC and KS are on the test rows.")
}

func details(r *Row) string {
	var parts []string
	for _, k := range sortedKeys(r.Extra) {
		parts = append(parts, fmt.Sprintf("%s %s", k, fmtNum(r.Extra[k])))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ", ")
}

func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e9:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.3g", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func intOr(p *int) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprint(*p)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// footnotes numbers distinct reasons.
type footnotes struct {
	index map[string]int
	list  []string
}

func (f *footnotes) ref(reason string) string {
	i, ok := f.index[reason]
	if !ok {
		f.list = append(f.list, reason)
		i = len(f.list)
		f.index[reason] = i
	}
	return fmt.Sprintf(" ⁽%d⁾", i)
}

// Compare writes, for every row ID present in both reports, the ratio b/a of wall time, CPU time and
// peak memory and the difference b−a of AUC and KS; rows only one report holds are listed after.
func Compare(w io.Writer, a, b *Report) {
	fmt.Fprintf(w, "A: %s, %s, commit %s, load %.2f\n", a.Started.Format("2006-01-02 15:04"), a.Machine.CPUModel, short(a.Build.Commit), a.Machine.LoadStart[0])
	fmt.Fprintf(w, "B: %s, %s, commit %s, load %.2f\n\n", b.Started.Format("2006-01-02 15:04"), b.Machine.CPUModel, short(b.Build.Commit), b.Machine.LoadStart[0])
	fmt.Fprintln(w, "| case | wall B/A | CPU B/A | peak B/A | fit B/A | AUC B−A | KS B−A |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	byID := map[string]*Row{}
	for i := range a.Rows {
		byID[a.Rows[i].ID] = &a.Rows[i]
	}
	seen := map[string]bool{}
	var onlyB []string
	for i := range b.Rows {
		rb := &b.Rows[i]
		ra, ok := byID[rb.ID]
		if !ok {
			onlyB = append(onlyB, rb.ID)
			continue
		}
		seen[rb.ID] = true
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", rb.ID, ratio(ra.WallS, rb.WallS), ratio(ra.CPUS, rb.CPUS),
			ratio(ra.PeakRSSMB, rb.PeakRSSMB), ratio(ra.FitS, rb.FitS), diff(ra.AUC, rb.AUC), diff(ra.KS, rb.KS))
	}
	var onlyA []string
	for _, r := range a.Rows {
		if !seen[r.ID] {
			onlyA = append(onlyA, r.ID)
		}
	}
	if len(onlyA) > 0 {
		fmt.Fprintf(w, "\nonly in A: %s\n", strings.Join(onlyA, ", "))
	}
	if len(onlyB) > 0 {
		fmt.Fprintf(w, "\nonly in B: %s\n", strings.Join(onlyB, ", "))
	}
}

func ratio(a, b *float64) string {
	if a == nil || b == nil || *a == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", *b / *a)
}

func diff(a, b *float64) string {
	if a == nil || b == nil {
		return "–"
	}
	return fmt.Sprintf("%+.4f", *b-*a)
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	if s == "" {
		return "unknown"
	}
	return s
}
