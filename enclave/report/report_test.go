package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"insitu/connectors/catalog"
	"insitu/enclave/audit"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
)

type fakeLog []audit.Record

func (l fakeLog) Records(_ context.Context, after int64, limit int) ([]audit.Record, error) {
	var out []audit.Record
	for _, r := range l {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

type fakeManifests map[string]*dataset.Manifest

func (m fakeManifests) Manifest(_ context.Context, name string, version int) (*dataset.Manifest, error) {
	if d, ok := m[name]; ok && d.Version == version {
		return d, nil
	}
	return nil, &dataset.Error{Dataset: name, Version: version, Op: "manifest", Err: dataset.ErrNotFound}
}

var day = time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)

func release(seq int64, at time.Time, job, bank, purpose, ds, version string, total int, fields ...string) audit.Record {
	ev := gate.ReleaseEvent{Bank: bank, Purpose: purpose, Dataset: ds, DatasetVersion: version, Fields: fields,
		Cohort: gate.CohortSummary{Total: total, Train: total * 4 / 5, Test: total - total*4/5}}
	p, _ := json.Marshal(ev)
	return audit.Record{Seq: seq, Time: at, Kind: audit.KindRelease, Actor: "enclave", Subject: job, Payload: p}
}

func fixture() (fakeLog, fakeManifests) {
	log := fakeLog{
		{Seq: 1, Time: day, Kind: audit.KindIngest, Actor: "steward-1", Payload: json.RawMessage(`{}`)},
		release(2, day.Add(24*time.Hour), "job-a", "bank-a", "credit_approval", "sme-credit", "3", 1200,
			"tax_arrears_history.arrears_amount_24m", "tax_arrears_history.arrears_count_24m", "shareholders_and_contributions.shareholder_count"),
		{Seq: 3, Time: day.Add(25 * time.Hour), Kind: audit.KindRunStart, Actor: "enclave", Subject: "job-b", Payload: json.RawMessage(`{}`)},
		release(4, day.Add(72*time.Hour), "job-b", "bank-b", "pre_screening", "sme-credit", "v3", 800,
			"shareholders_and_contributions.paid_in_capital"),
		release(5, day.Add(96*time.Hour), "job-c", "bank-a", "model_development", "gone", "1", 150,
			"tax_deferral.deferrals_24m"),
	}
	mf := fakeManifests{"sme-credit": {Name: "sme-credit", Version: 3, Columns: []dataset.Column{
		{Name: "subject_id"},
		{Name: "tax_arrears_history.arrears_amount_24m", Item: "tax_arrears_history", Provider: "tax-bureau"},
		{Name: "tax_arrears_history.arrears_count_24m", Item: "tax_arrears_history", Provider: "tax-bureau"},
		{Name: "shareholders_and_contributions.shareholder_count", Item: "shareholders_and_contributions", Provider: "market-regulator"},
		{Name: "shareholders_and_contributions.paid_in_capital", Item: "shareholders_and_contributions", Provider: "market-regulator"},
	}}}
	return log, mf
}

func TestUsageByProvider(t *testing.T) {
	log, mf := fixture()
	ctx := context.Background()
	rows, err := Usage(ctx, log, mf, Query{Provider: "tax-bureau"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("rows %+v", rows)
	}
	r := rows[0]
	if r.Job != "job-a" || r.Bank != "bank-a" || r.Purpose != "credit_approval" || r.Rows != 1200 || r.DatasetVersion != "3" ||
		strings.Join(r.Items, ",") != "tax_arrears_history" || len(r.Fields) != 2 || strings.Join(r.Providers, ",") != "tax-bureau" ||
		!r.Released.Equal(day.Add(24*time.Hour)) {
		t.Errorf("row %+v", r)
	}
	rows, err = Usage(ctx, log, mf, Query{Provider: "market-regulator"})
	if err != nil || len(rows) != 2 || rows[0].Job != "job-a" || rows[1].Job != "job-b" || rows[1].Rows != 800 ||
		strings.Join(rows[0].Fields, ",") != "shareholders_and_contributions.shareholder_count" {
		t.Fatalf("market-regulator: %v %+v", err, rows)
	}
	// Since excludes earlier releases.
	rows, _ = Usage(ctx, log, mf, Query{Provider: "market-regulator", Since: day.Add(48 * time.Hour)})
	if len(rows) != 1 || rows[0].Job != "job-b" {
		t.Errorf("since: %+v", rows)
	}

	var csvOut, jsonOut, md bytes.Buffer
	rows, _ = Usage(ctx, log, mf, Query{Provider: "market-regulator"})
	if err := WriteCSV(&csvOut, rows); err != nil {
		t.Fatal(err)
	}
	wantCSV := "job,bank,purpose,dataset,dataset_version,items,fields,providers,rows,released\n" +
		"job-a,bank-a,credit_approval,sme-credit,3,shareholders_and_contributions,shareholders_and_contributions.shareholder_count,market-regulator,1200,2025-06-02T08:00:00Z\n" +
		"job-b,bank-b,pre_screening,sme-credit,v3,shareholders_and_contributions,shareholders_and_contributions.paid_in_capital,market-regulator,800,2025-06-04T08:00:00Z\n"
	if csvOut.String() != wantCSV {
		t.Errorf("csv:\n%s\nwant\n%s", csvOut.String(), wantCSV)
	}
	WriteJSON(&jsonOut, Query{Provider: "market-regulator"}, rows)
	var back struct {
		Provider string
		Jobs     []Row
	}
	if err := json.Unmarshal(jsonOut.Bytes(), &back); err != nil || back.Provider != "market-regulator" || len(back.Jobs) != 2 || back.Jobs[1].Rows != 800 {
		t.Errorf("json: %v %s", err, jsonOut.String())
	}
	WriteMarkdown(&md, Query{Provider: "market-regulator"}, rows)
	if !strings.Contains(md.String(), "# Data usage report: provider market-regulator") ||
		!strings.Contains(md.String(), "| job-b | bank-b | pre_screening | sme-credit | v3 |") ||
		!strings.Contains(md.String(), "Subject-rows used in all: 2000.") {
		t.Errorf("markdown:\n%s", md.String())
	}
}

func TestUsageByCategory(t *testing.T) {
	log, mf := fixture()
	ctx := context.Background()
	// Category 2 (shareholders) by number and by key give the same rows.
	byNo, err := Usage(ctx, log, mf, Query{Category: "2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(byNo) != 2 || byNo[0].Job != "job-a" || byNo[1].Job != "job-b" {
		t.Fatalf("category 2: %+v", byNo)
	}
	key := ""
	if cat, err := findCategory(nilCatalog(), "2"); err == nil {
		key = cat.Key
	}
	byKey, err := Usage(ctx, log, mf, Query{Category: key})
	if err != nil || len(byKey) != 2 {
		t.Errorf("category %q: %v %+v", key, err, byKey)
	}
	// A dataset whose manifest is gone: the row appears in the category report, unresolved.
	rows, err := Usage(ctx, log, mf, Query{Category: "3"})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range rows {
		if r.Job == "job-c" {
			found = r.Unresolved && r.Rows == 150 && len(r.Providers) == 0
		}
	}
	if !found {
		t.Errorf("category 3: %+v", rows)
	}
	for _, q := range []Query{{}, {Provider: "p", Category: "2"}, {Category: "no-such"}, {Category: "99"}} {
		if _, err := Usage(ctx, log, mf, q); !errors.Is(err, ErrQuery) {
			t.Errorf("%+v: %v", q, err)
		}
	}
}

func nilCatalog() *catalog.Catalog { return catalog.Default() }
