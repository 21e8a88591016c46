package synthetic

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"insitu/connectors"
	"insitu/connectors/catalog"
)

// Generate writes cfg's synthetic data set into outDir, which must not exist or be empty, and
// returns its summary (also written as manifest.json). It writes into a temporary folder next to
// outDir and renames it into place at the end, so a failed run leaves nothing behind.
func Generate(cfg Config, outDir string) (*Summary, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if outDir == "" {
		return nil, errors.New("synthetic: no output folder given")
	}
	out := filepath.Clean(outDir)
	if err := checkOutDir(out); err != nil {
		return nil, err
	}
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("synthetic: create the output folder's parent: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("synthetic: create a temporary folder next to %s: %w", out, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	sum, err := generate(cfg, tmp)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("synthetic: %w", err)
	}
	if err := testHookBeforeRename(); err != nil {
		return nil, err
	}
	if err := checkOutDir(out); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(out); err == nil {
		if err := os.Remove(out); err != nil { // only an empty folder can be removed
			return nil, fmt.Errorf("synthetic: replace the empty folder %s: %w", out, err)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, fmt.Errorf("synthetic: move the generated data into %s: %w", out, err)
	}
	done = true
	if err := syncDir(parent); err != nil {
		return nil, fmt.Errorf("synthetic: %w", err)
	}
	return sum, nil
}

// testHookBeforeRename lets tests fail a run after every file is written.
var testHookBeforeRename = func() error { return nil }

// checkOutDir accepts a folder that does not exist or is empty.
func checkOutDir(out string) error {
	fi, err := os.Lstat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("synthetic: output folder: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("synthetic: output folder %s is a file, not a folder: choose another path", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("synthetic: output folder: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("synthetic: %s: %w (it holds %s): choose a new folder or empty it", out, ErrOutDirNotEmpty, entries[0].Name())
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// outFile writes one output file through a buffer, hashing what it writes.
type outFile struct {
	rel string
	f   *os.File
	buf *bufio.Writer
	h   hash.Hash
	n   int64
	csv *csv.Writer
}

func createFile(dir, rel string) (*outFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(rel)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("synthetic: %w", err)
	}
	o := &outFile{rel: rel, f: f, buf: bufio.NewWriterSize(f, 256<<10), h: sha256.New()}
	o.csv = csv.NewWriter(o)
	return o, nil
}

func (o *outFile) Write(p []byte) (int, error) {
	o.h.Write(p)
	o.n += int64(len(p))
	return o.buf.Write(p)
}

// close flushes, syncs and closes the file and returns its digest.
func (o *outFile) close() (FileDigest, error) {
	o.csv.Flush()
	err := errors.Join(o.csv.Error(), o.buf.Flush(), o.f.Sync(), o.f.Close())
	if err != nil {
		return FileDigest{}, fmt.Errorf("synthetic: write %s: %w", o.rel, err)
	}
	return FileDigest{Path: o.rel, Bytes: o.n, SHA256: hex.EncodeToString(o.h.Sum(nil))}, nil
}

// writeFile writes a small file at once.
func writeFile(dir, rel string, data []byte) (FileDigest, error) {
	o, err := createFile(dir, rel)
	if err != nil {
		return FileDigest{}, err
	}
	if _, err := o.Write(data); err != nil {
		o.f.Close()
		return FileDigest{}, fmt.Errorf("synthetic: write %s: %w", rel, err)
	}
	return o.close()
}

// generate writes everything into dir.
func generate(cfg Config, dir string) (*Summary, error) {
	cat := catalog.Default()
	sum := &Summary{Dataset: DatasetName, Seed: cfg.Seed, Enterprises: cfg.Enterprises, Bank: cfg.Bank,
		AsOf: cfg.AsOf.Format("2006-01-02"), LabelFraction: cfg.LabelFraction, AuthorizationRate: cfg.AuthorizationRate}
	authItems, err := describeSources(cat, sum)
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"sources", "mappings"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("synthetic: %w", err)
		}
	}
	var files []*outFile
	defer func() {
		for _, o := range files {
			o.f.Close() // a no-op error after a successful close
		}
	}()

	// The sources, streamed enterprise by enterprise.
	srcFiles := make([]*outFile, len(sourceDefs))
	for k, d := range sourceDefs {
		o, err := createFile(dir, "sources/"+d.key+".csv")
		if err != nil {
			return nil, err
		}
		files = append(files, o)
		srcFiles[k] = o
		header := append([]string{subjectColumn}, make([]string, len(d.columns))...)
		for c, col := range d.columns {
			header[1+c] = col.name
		}
		if err := o.csv.Write(header); err != nil {
			return nil, fmt.Errorf("synthetic: write %s: %w", o.rel, err)
		}
	}
	w := &world{seed: cfg.Seed, asOf: cfg.AsOf, seen: make(map[string]bool, cfg.Enterprises)}
	subjects := make([]subject, cfg.Enterprises)
	e := &enterprise{rows: newRows()}
	line := make([]string, 0, 64)
	for i := range cfg.Enterprises {
		w.newEnterprise(i, e)
		subjects[i] = subject{uscc: e.uscc, defaulted: e.defaulted, weight: e.borrowerWeight}
		for k := range e.rows {
			row := &e.rows[k]
			if !row.present {
				continue
			}
			line = append(append(line[:0], e.uscc), row.cells...)
			if err := srcFiles[k].csv.Write(line); err != nil {
				return nil, fmt.Errorf("synthetic: write %s: %w", srcFiles[k].rel, err)
			}
			sum.Sources[k].Rows++
		}
	}
	for _, o := range srcFiles {
		d, err := o.close()
		if err != nil {
			return nil, err
		}
		sum.Files = append(sum.Files, d)
	}

	// The bank's labels and the authorizations.
	borrowers := chooseBorrowers(cfg.Seed, subjects, cfg.LabelFraction)
	lf, err := createFile(dir, "labels.csv")
	if err != nil {
		return nil, err
	}
	files = append(files, lf)
	if sum.Defaults, err = writeLabels(lf.csv, subjects, borrowers, cfg.AsOf); err != nil {
		return nil, fmt.Errorf("synthetic: write labels.csv: %w", err)
	}
	sum.Labelled = len(borrowers)
	if sum.Labelled > 0 {
		sum.DefaultRate = float64(sum.Defaults) / float64(sum.Labelled)
	}
	af, err := createFile(dir, "authorizations.csv")
	if err != nil {
		return nil, err
	}
	files = append(files, af)
	if err := af.csv.Write(AuthorizationHeader); err != nil {
		return nil, fmt.Errorf("synthetic: write authorizations.csv: %w", err)
	}
	isBorrower := make([]bool, len(subjects))
	for _, i := range borrowers {
		isBorrower[i] = true
	}
	aw := &authWriter{w: af.csv, seed: cfg.Seed, bank: cfg.Bank, asOf: cfg.AsOf, items: authItems, sum: sum}
	for i, s := range subjects {
		if err := aw.write(i, s, isBorrower[i], cfg.AuthorizationRate); err != nil {
			return nil, fmt.Errorf("synthetic: write authorizations.csv: %w", err)
		}
	}
	for _, o := range []*outFile{lf, af} {
		d, err := o.close()
		if err != nil {
			return nil, err
		}
		sum.Files = append(sum.Files, d)
	}

	// Mapping files and the dataset spec.
	spec := connectors.DatasetSpec{Dataset: DatasetName, Class: connectors.ClassSynthetic, Subject: "uscc",
		Description: fmt.Sprintf("Synthetic small and micro enterprise credit data: %d enterprises, seed %d, as of %s, generated by insitu.",
			cfg.Enterprises, cfg.Seed, sum.AsOf)}
	for _, d := range sourceDefs {
		data, err := mappingYAML(cat, d)
		if err != nil {
			return nil, err
		}
		rel := "mappings/" + d.key + ".yaml"
		fd, err := writeFile(dir, rel, data)
		if err != nil {
			return nil, err
		}
		sum.Files = append(sum.Files, fd)
		spec.Mappings = append(spec.Mappings, rel)
	}
	data, err := encodeYAML("# The synthetic dataset's sources; ingest them with `insitu ingest --spec dataset.yaml`.\n", spec)
	if err != nil {
		return nil, err
	}
	fd, err := writeFile(dir, "dataset.yaml", data)
	if err != nil {
		return nil, err
	}
	sum.Files = append(sum.Files, fd)
	slices.SortFunc(sum.Files, func(a, b FileDigest) int { return strings.Compare(a.Path, b.Path) })

	manifest, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("synthetic: %w", err)
	}
	if _, err := writeFile(dir, "manifest.json", append(manifest, '\n')); err != nil {
		return nil, err
	}
	for _, sub := range []string{"sources", "mappings", "."} {
		if err := syncDir(filepath.Join(dir, sub)); err != nil {
			return nil, fmt.Errorf("synthetic: %w", err)
		}
	}
	return sum, nil
}

// describeSources fills sum.Sources and sum.Categories from the catalog and returns the items an
// authorization names: the mapped items that need the subject's authorization, in catalog order.
func describeSources(cat *catalog.Catalog, sum *Summary) ([]authItem, error) {
	mapped := map[string]bool{}
	cats := map[int]bool{}
	for _, d := range sourceDefs {
		ss := SourceSummary{Source: d.key, ProviderName: d.providerName, Columns: 1 + len(d.columns)}
		for _, c := range d.columns {
			item, field, ok := strings.Cut(c.field, ".")
			if !ok || item == "custom" {
				continue
			}
			it, _, err := cat.Field(item, field)
			if err != nil {
				return nil, fmt.Errorf("synthetic: source %s, column %s: %w", d.key, c.name, err)
			}
			if !mapped[item] {
				mapped[item] = true
			}
			if !slices.Contains(ss.Items, item) {
				ss.Items = append(ss.Items, item)
			}
			cats[it.Category.No] = true
		}
		sum.Sources = append(sum.Sources, ss)
	}
	for no := range cats {
		sum.Categories = append(sum.Categories, no)
	}
	slices.Sort(sum.Categories)
	var items []authItem
	for _, it := range cat.Items() {
		if mapped[it.Key] && it.NeedsAuthorization {
			items = append(items, authItem{key: it.Key, personal: it.Sensitivity == catalog.Personal})
		}
	}
	return items, nil
}

// mapping returns the connectors mapping of a source file in mappings/. A source that maps items
// about persons (the owner or legal representative) declares them related persons of the
// enterprise that keys the row.
func (d *sourceDef) mapping(cat *catalog.Catalog) connectors.Mapping {
	m := connectors.Mapping{Source: d.key, Provider: d.key, ProviderName: d.providerName, Format: connectors.FormatCSV,
		Path: "../sources/" + d.key + ".csv", Subject: connectors.SubjectColumn{Column: subjectColumn, Kind: "uscc"},
		CustomFields: d.custom}
	for _, c := range d.columns {
		if c.field == "" {
			continue
		}
		m.Columns = append(m.Columns, connectors.ColumnMapping{Column: c.name, Field: c.field})
		item, _, _ := strings.Cut(c.field, ".")
		if it, err := cat.Item(item); err == nil && it.Subject == catalog.SubjectPerson {
			m.Subject.RelatedPersons = true
		}
	}
	return m
}

func mappingYAML(cat *catalog.Catalog, d *sourceDef) ([]byte, error) {
	return encodeYAML(fmt.Sprintf("# Synthetic source of %s (%s): one row per enterprise it holds a record of.\n", d.key, d.providerName), d.mapping(cat))
}

func encodeYAML(comment string, v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(comment)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("synthetic: encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("synthetic: encode YAML: %w", err)
	}
	return b.Bytes(), nil
}
