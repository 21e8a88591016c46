package enclave

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"insitu/connectors"
	"insitu/connectors/ident"
	"insitu/enclave/cohort"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/enclave/job/manifest"
	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// TestFolds is the number of folds of the cohort split: the subjects whose fold is 0 (one in
// TestFolds, chosen by the SHA-256 of the subject identifier; see cohort.Split) are held out for the
// enclave's own evaluation and never reach the plugin.
const TestFolds = 5

// Cohort is a job's cohort as the enclave prepares it: the labelled subjects of the dataset version
// whose authorizations cover the job, split into a training and a held-out part, with the manifest's
// transforms fitted on the training part. It lives in the enclave's memory only.
type Cohort struct {
	// Dataset is the dataset version the job runs on.
	Dataset *dataset.Manifest
	// Labelled is the number of labelled subjects; Matched those the dataset holds; Lost counts the
	// matched subjects left out, by reason (the steward sees it, the bank does not).
	Labelled, Matched int
	Lost              map[consent.Reason]int
	// Subjects are the kept subjects' identifiers: the training rows, then the held-out rows.
	Subjects []string
	// Train and Test are the sizes of the two parts.
	Train, Test int
	// Fitted is the manifest's transform fitted on the training part; Features its outputs' names
	// and Bounds their guaranteed ranges.
	Fitted   *features.Fitted
	Features []string
	Bounds   []features.Interval
	// XTrain and XTest are the transformed features (row-major, one row per subject); YTrain and
	// YTest the labels.
	XTrain, XTest *mat.Dense
	YTrain, YTest []float64
	// Public is true for a dataset of class public: no authorization applies to its cohort.
	Public bool
	// AuthorizationDigest commits to the authorization decision: the query (bank, purpose, items,
	// time) and the sorted identifiers it kept; for a public dataset, the same query marked
	// "public" and the identifiers of every labelled subject (PublicAuthorization). A receipt
	// carries it.
	AuthorizationDigest string
}

// PublicAuthorization is what applies to the cohort of a public dataset, as the steward's review
// says it and as the authorization digest of its jobs records it.
const PublicAuthorization = "public dataset: no authorization applies"

// PrepareError says why a job's cohort could not be prepared. Its message is shown to the bank, so
// it names fields and rules, never data values.
type PrepareError struct {
	Job    string
	Reason string
}

func (e *PrepareError) Error() string { return fmt.Sprintf("job %s: %s", e.Job, e.Reason) }

// Items returns the catalog items a manifest requests, sorted; custom fields belong to no catalog
// item and are not among them.
func Items(m *manifest.Manifest) []string {
	seen := map[string]bool{}
	for _, f := range m.Fields {
		if f.Custom() {
			continue
		}
		item, _, _ := strings.Cut(f.Key, ".")
		seen[item] = true
	}
	out := make([]string, 0, len(seen))
	for it := range seen {
		out = append(out, it)
	}
	sort.Strings(out)
	return out
}

// PrepareCohort assembles a job's cohort at time at: the requested columns of the dataset version
// for the labelled subjects, kept only where an authorization covers, for the job's bank and purpose,
// every requested item that needs one; split into training and held-out parts; the manifest's
// transforms fitted on the training part. In he mode every transformed feature must be bounded.
// jobID is used in errors.
//
// The subjects are labelled by labels (the bank's) or, when the manifest names a label_column, by
// that column of the dataset; labels is then nil. The dataset's class decides what applies:
//
//   - public (published benchmark data, whose subjects are opaque record ids the consent registry
//     knows nothing of): no authorization applies; every labelled subject is kept, and the
//     authorization digest records the query marked public. A label_column is allowed here only.
//   - synthetic: the catalog items need their authorizations as on platform data; custom columns
//     need none, since the generator made their subjects up.
//   - platform: the catalog items need their authorizations, and custom fields are refused:
//     authorizations name catalog items, so none can cover a column the catalog does not know.
//
// A custom field is checked against its column (manifest.CheckCustom): a model feature, its steps
// applying to the column's type, personal: true where the mapping declared personal information.
func (e *Enclave) PrepareCohort(ctx context.Context, jobID string, m *manifest.Manifest, labels *cohort.Labels, at time.Time) (*Cohort, error) {
	fail := func(format string, a ...any) error {
		return &PrepareError{Job: jobID, Reason: fmt.Sprintf(format, a...)}
	}
	sel, err := e.selectCohort(ctx, jobID, m, labels, at)
	if err != nil {
		return nil, err
	}
	dm, all, q, kept, lost := sel.dataset, sel.all, sel.query, sel.kept, sel.lost
	if err := e.Jobs.CheckCohortSize(ctx, len(kept)); err != nil {
		return nil, &PrepareError{Job: jobID, Reason: err.Error()}
	}
	keep := make(map[string]bool, len(kept))
	for _, id := range kept {
		keep[id] = true
	}
	var rows []int
	for i, id := range all.Subjects {
		if keep[id] {
			rows = append(rows, i)
		}
	}
	cc, y := all.Rows(rows)
	t := &cohort.Table{Subjects: make([]string, len(rows)), Label: y, Columns: cc}
	for k, i := range rows {
		t.Subjects[k] = all.Subjects[i]
	}
	train, test := cohort.Split(t.Subjects, TestFolds)
	trainCols, yTrain := t.Rows(train)
	testCols, yTest := t.Rows(test)
	fitted, err := features.Fit(m.Spec(), trainCols)
	if err != nil {
		return nil, fail("fitting the manifest's transforms: %v", err)
	}
	bounds := fitted.Bounds()
	fnames := fitted.Names()
	if m.Mode == sdk.ModeHE {
		for i, b := range bounds {
			if !b.Bounded() {
				return nil, fail("feature %q is not bounded after its transform; in he mode clip and scale every numeric field", fnames[i])
			}
		}
	}
	xTrain, _, err := fitted.Transform(trainCols)
	if err != nil {
		return nil, fail("transforming the training part: %v", err)
	}
	xTest, _, err := fitted.Transform(testCols)
	if err != nil {
		return nil, fail("transforming the held-out part: %v", err)
	}
	labelled := len(all.Subjects)
	if labels != nil {
		labelled = labels.Len()
	}
	c := &Cohort{Dataset: dm, Labelled: labelled, Matched: len(all.Subjects), Lost: lost, Public: sel.public,
		Train: len(train), Test: len(test), Fitted: fitted, Features: fnames, Bounds: bounds,
		XTrain: xTrain, XTest: xTest, YTrain: yTrain, YTest: yTest}
	for _, i := range train {
		c.Subjects = append(c.Subjects, t.Subjects[i])
	}
	for _, i := range test {
		c.Subjects = append(c.Subjects, t.Subjects[i])
	}
	c.AuthorizationDigest = authorizationDigest(q, kept, sel.public)
	return c, nil
}

// selection is a job's cohort before the split: the labelled subjects the dataset holds, with the
// requested columns, and those whose authorizations cover the job.
type selection struct {
	dataset *dataset.Manifest
	all     *cohort.Table
	query   consent.CohortQuery
	kept    []string
	lost    map[consent.Reason]int
	public  bool
}

// selectCohort reads the requested columns of the manifest's dataset version for the labelled
// subjects (labels, or the manifest's label column when labels is nil) and keeps those whose
// authorizations cover the job at time at, or all of them on a public dataset.
func (e *Enclave) selectCohort(ctx context.Context, jobID string, m *manifest.Manifest, labels *cohort.Labels, at time.Time) (*selection, error) {
	fail := func(format string, a ...any) error {
		return &PrepareError{Job: jobID, Reason: fmt.Sprintf(format, a...)}
	}
	version, err := DatasetVersion(m.Dataset.Version)
	if err != nil {
		return nil, fail("%v", err)
	}
	dm, err := e.Datasets.Manifest(ctx, m.Dataset.Name, version)
	if err != nil {
		return nil, err
	}
	public := dm.Class == connectors.ClassPublic
	switch {
	case m.LabelColumn != "" && !public:
		return nil, fail("label_column %s takes the outcome from the dataset, which only a dataset of class public may give; dataset %s is of class %s: "+
			"upload the bank's sealed labels and name them in labels instead", m.LabelColumn, dm.Name, dm.Class)
	case m.LabelColumn == "" && labels == nil:
		return nil, fail("the job names no labels: name the bank's sealed labels in labels (or, on a public dataset, the outcome column in label_column)")
	case labels != nil && labels.Kind != "" && string(labels.Kind) != dm.SubjectKind:
		return nil, fail("the labels identify subjects by %s, dataset %s by %s", labels.Kind, dm.Name, dm.SubjectKind)
	}
	cols := make([]dataset.Column, 0, len(m.Fields))
	for i, f := range m.Fields {
		c, ok := dm.Column(f.Key)
		if !ok {
			return nil, fail("dataset %s v%d has no column %q (field %s)", dm.Name, dm.Version, f.Key, f.Key)
		}
		if f.Custom() {
			if dm.Class == connectors.ClassPlatform {
				return nil, fail("fields[%d] %s is a custom column of platform dataset %s: authorizations name catalog items, so none can cover it; "+
					"a job on a platform dataset requests catalog fields only (the steward may map the column to a catalog field)", i, f.Key, dm.Name)
			}
			if err := m.CheckCustom(i, manifest.CustomColumn{Type: c.CatalogType, Role: c.Role, Sensitivity: c.Sensitivity}); err != nil {
				var me *manifest.Error
				if errors.As(err, &me) {
					return nil, fail("%s: %s (dataset %s v%d)", me.Path, me.Message, dm.Name, dm.Version)
				}
				return nil, fail("%v", err)
			}
		}
		cols = append(cols, c)
	}
	names := make([]string, len(cols), len(cols)+1)
	for i, c := range cols {
		names[i] = c.Name
	}
	if m.LabelColumn != "" {
		lc, ok := dm.Column(m.LabelColumn)
		if !ok {
			return nil, fail("dataset %s v%d has no column %q (label_column)", dm.Name, dm.Version, m.LabelColumn)
		}
		if t := lc.CatalogType; t != "int" && t != "float" && t != "bool" {
			return nil, fail("label_column %s is a column of type %s: the outcome must be a number or a boolean holding 0 or 1", m.LabelColumn, t)
		}
		names = append(names, m.LabelColumn)
	}
	sc, err := e.Datasets.Scan(ctx, dm.Name, dm.Version, dataset.ScanOptions{Columns: names})
	if err != nil {
		return nil, err
	}
	var all *cohort.Table
	if m.LabelColumn != "" {
		all, err = cohort.CollectLabelColumn(ctx, sc, cols, m.LabelColumn)
	} else {
		all, err = cohort.Collect(ctx, sc, cols, labels)
	}
	sc.Close()
	if err != nil {
		return nil, err
	}
	q := consent.CohortQuery{IDType: ident.Kind(dm.SubjectKind), Grantee: m.Bank, Purpose: m.Purpose, Items: Items(m), At: at}
	if public {
		return &selection{dataset: dm, all: all, query: q, kept: slices.Clone(all.Subjects), lost: map[consent.Reason]int{}, public: true}, nil
	}
	kept, lost, err := e.Consent.Cohort(ctx, q, slices.Values(all.Subjects))
	if err != nil {
		return nil, err
	}
	return &selection{dataset: dm, all: all, query: q, kept: kept, lost: lost}, nil
}

// authorizationDigest is the SHA-256 of the canonical JSON of the query and the sorted identifiers
// it kept. On a public dataset the JSON has one more member, "authorization": PublicAuthorization,
// so the digest of a public cohort never equals that of a consent decision.
func authorizationDigest(q consent.CohortQuery, kept []string, public bool) string {
	ids := slices.Clone(kept)
	sort.Strings(ids)
	type decision struct {
		IDType  string   `json:"id_type"`
		Grantee string   `json:"grantee"`
		Purpose string   `json:"purpose"`
		Items   []string `json:"items"`
		At      string   `json:"at"`
		Kept    []string `json:"kept"`
	}
	d := decision{string(q.IDType), q.Grantee, string(q.Purpose), q.Items, q.At.UTC().Format(time.RFC3339), ids}
	var b []byte
	if public {
		b, _ = json.Marshal(struct {
			Authorization string `json:"authorization"`
			decision
		}{PublicAuthorization, d})
	} else {
		b, _ = json.Marshal(d)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// DatasetVersion reads a manifest's dataset version: a positive number, optionally written "v3".
// A job runs on the exact version its manifest names, never on "the latest".
func DatasetVersion(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("dataset version %q: want a version number such as 3 or v3", s)
	}
	return n, nil
}

// ColumnMajor returns the columns of a row-major matrix: out[j][i] = x(i, j).
func ColumnMajor(x *mat.Dense) [][]float64 {
	if x == nil {
		return nil
	}
	n, d := x.Dims()
	out := make([][]float64, d)
	for j := range out {
		out[j] = make([]float64, n)
		for i := range n {
			out[j][i] = x.At(i, j)
		}
	}
	return out
}
