// Package report builds the usage report the platform sends back to its data providers: which jobs
// used their data, for which bank and purpose, on how many subjects, released when.
//
// Call Usage with the audit log, the dataset store and a Query naming a provider or a catalog
// category, then write the rows with WriteCSV, WriteJSON or WriteMarkdown. The report is built from
// the audit log's release records (gate.ReleaseEvent: bank, purpose, dataset version, requested
// fields, cohort size) and the dataset manifests' column provenance (which provider each column came
// from). Only released jobs appear: a job whose outputs never left used no provider's data outside
// the enclave. The report holds no data value and no subject: counts and names only.
package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"insitu/connectors/catalog"
	"insitu/enclave/audit"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
)

// ErrQuery is wrapped when a Query is malformed.
var ErrQuery = errors.New("invalid usage report query")

// Records reads the audit log; *audit.Log is one.
type Records interface {
	Records(ctx context.Context, after int64, limit int) ([]audit.Record, error)
}

// Manifests reads dataset manifests; *dataset.Store is one.
type Manifests interface {
	Manifest(ctx context.Context, name string, version int) (*dataset.Manifest, error)
}

// Query selects the releases a report covers: those that used data of Provider, or of an item of
// Category (exactly one of the two), released at or after Since.
type Query struct {
	// Provider is a provider id, as dataset manifests name it.
	Provider string
	// Category is a catalog category: its key (e.g. "tax") or number (1 to 17).
	Category string
	// Since is the earliest release time included; the zero time includes all.
	Since time.Time
	// Catalog resolves items to categories; catalog.Default() when nil.
	Catalog *catalog.Catalog
}

// Row is one released job in the report.
type Row struct {
	Job            string `json:"job"`
	Bank           string `json:"bank"`
	Purpose        string `json:"purpose"`
	Dataset        string `json:"dataset"`
	DatasetVersion string `json:"dataset_version"`
	// Items are the catalog items of the job's fields that the query selects: those the provider
	// supplied, or those of the category.
	Items []string `json:"items"`
	// Fields are the job's fields (item.field keys) among Items.
	Fields []string `json:"fields"`
	// Providers supplied the selected fields.
	Providers []string `json:"providers"`
	// Rows is the job's cohort size: how many subjects' data the job used.
	Rows     int       `json:"rows"`
	Released time.Time `json:"released"`
	// Unresolved is set when the dataset version's manifest could not be read, so the providers of
	// the job's fields are unknown; such a row appears only in category reports.
	Unresolved bool `json:"unresolved,omitempty"`
}

// Usage returns the rows of the report, in release order.
func Usage(ctx context.Context, log Records, ds Manifests, q Query) ([]Row, error) {
	if (q.Provider == "") == (q.Category == "") {
		return nil, fmt.Errorf("report: %w: name a provider or a category, not both", ErrQuery)
	}
	cat := q.Catalog
	if cat == nil {
		cat = catalog.Default()
	}
	var category *catalog.Category
	if q.Category != "" {
		var err error
		if category, err = findCategory(cat, q.Category); err != nil {
			return nil, err
		}
	}
	manifests := map[string]*dataset.Manifest{}
	var rows []Row
	for after := int64(0); ; {
		recs, err := log.Records(ctx, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		if len(recs) == 0 {
			return rows, nil
		}
		after = recs[len(recs)-1].Seq
		for _, rec := range recs {
			if rec.Kind != audit.KindRelease || rec.Time.Before(q.Since) {
				continue
			}
			var ev gate.ReleaseEvent
			if err := json.Unmarshal(rec.Payload, &ev); err != nil {
				return nil, fmt.Errorf("report: audit record %d: release payload: %w", rec.Seq, err)
			}
			m, err := manifestFor(ctx, ds, manifests, ev.Dataset, ev.DatasetVersion)
			if err != nil {
				return nil, fmt.Errorf("report: audit record %d: %w", rec.Seq, err)
			}
			row := Row{Job: rec.Subject, Bank: ev.Bank, Purpose: ev.Purpose, Dataset: ev.Dataset, DatasetVersion: ev.DatasetVersion,
				Rows: ev.Cohort.Total, Released: rec.Time.UTC(), Unresolved: m == nil}
			for _, f := range ev.Fields {
				item, _, _ := strings.Cut(f, ".")
				provider := ""
				if m != nil {
					if c, ok := m.Column(f); ok {
						provider = c.Provider
					}
				}
				switch {
				case q.Provider != "" && provider != q.Provider:
					continue
				case category != nil:
					it, err := cat.Item(item)
					if err != nil || it.Category != category {
						continue
					}
				}
				row.Fields = append(row.Fields, f)
				if !slices.Contains(row.Items, item) {
					row.Items = append(row.Items, item)
				}
				if provider != "" && !slices.Contains(row.Providers, provider) {
					row.Providers = append(row.Providers, provider)
				}
			}
			if len(row.Fields) == 0 {
				continue
			}
			slices.Sort(row.Items)
			slices.Sort(row.Providers)
			rows = append(rows, row)
		}
	}
}

func findCategory(cat *catalog.Catalog, s string) (*catalog.Category, error) {
	if no, err := strconv.Atoi(s); err == nil {
		c, err := cat.Category(no)
		if err != nil {
			return nil, fmt.Errorf("report: %w: category %s: %w", ErrQuery, s, err)
		}
		return c, nil
	}
	for _, it := range cat.Items() {
		if it.Category != nil && it.Category.Key == s {
			return it.Category, nil
		}
	}
	return nil, fmt.Errorf("report: %w: no catalog category %q: give its key or number (insitu catalog lists them)", ErrQuery, s)
}

// manifestFor returns the manifest of a dataset version ("3" or "v3"), nil if it cannot be read.
func manifestFor(ctx context.Context, ds Manifests, cache map[string]*dataset.Manifest, name, version string) (*dataset.Manifest, error) {
	key := name + "\x00" + version
	if m, ok := cache[key]; ok {
		return m, nil
	}
	v, err := strconv.Atoi(strings.TrimPrefix(version, "v"))
	if err != nil || v < 1 || ds == nil {
		cache[key] = nil
		return nil, nil
	}
	m, err := ds.Manifest(ctx, name, v)
	if errors.Is(err, dataset.ErrNotFound) {
		m, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dataset %s v%d: %w", name, v, err)
	}
	cache[key] = m
	return m, nil
}
