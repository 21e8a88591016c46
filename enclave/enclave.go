package enclave

import (
	"context"
	"fmt"
	"io"

	"insitu/connectors"
	"insitu/enclave/aggregate"
	"insitu/enclave/audit"
	"insitu/enclave/consent"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
	"insitu/enclave/job"
	"insitu/enclave/keys"
	"insitu/enclave/pluginstore"
	"insitu/enclave/registry"
	"insitu/enclave/store"
)

// Enclave is an open data directory with everything kept in it: the state database, the audit log,
// the datasets, the plugin store and the authorization registry. Operations that change what the
// enclave holds go through its methods, which record them in the audit log.
type Enclave struct {
	Dir      *datadir.DataDir
	DB       *store.DB
	Audit    *audit.Log
	Datasets *dataset.Store
	Plugins  *pluginstore.Store
	Consent  *consent.Registry
	Identity *keys.Identity
	Jobs     *job.Board
	Gate     *gate.Gate
	// Privacy is the privacy ledger of aggregate-mode jobs: budgets and spends per bank and dataset.
	Privacy *aggregate.Ledger
	// Models is the model registry: every model the gate released (registered in the release's
	// transaction, see RunJob).
	Models *registry.Registry

	wake chan struct{} // Wake's signal to RunApproved
}

// Migrations lists the schema migrations of every package that keeps state in the database.
func Migrations() [][]store.Migration {
	return [][]store.Migration{audit.Migrations, consent.Migrations, job.Migrations, labelMigrations, gate.Migrations, registry.Migrations, aggregate.Migrations, nonceMigrations}
}

// Open opens the data directory dir with the master key named by src, and everything in it.
func Open(ctx context.Context, dir string, src keys.Source) (*Enclave, error) {
	d, err := datadir.Open(dir, src)
	if err != nil {
		return nil, err
	}
	return OpenDataDir(ctx, d)
}

// OpenDataDir is Open for a data directory already opened.
func OpenDataDir(ctx context.Context, d *datadir.DataDir) (*Enclave, error) {
	id, err := d.Identity()
	if err != nil {
		return nil, err
	}
	db, err := store.OpenDataDir(ctx, d, Migrations()...)
	if err != nil {
		return nil, err
	}
	e := &Enclave{Dir: d, DB: db, Identity: id, wake: make(chan struct{}, 1)}
	e.Audit = audit.New(db, id, audit.Options{})
	e.Consent = consent.New(db, e.Audit, consent.Options{})
	e.Jobs = job.New(db, e.Audit, job.Options{})
	e.Privacy = aggregate.NewLedger(db, e.Audit)
	results, err := d.Sub("results")
	if err != nil {
		db.Close()
		return nil, err
	}
	e.Gate = gate.New(db, e.Audit, e.Jobs, id, results, gate.Options{})
	e.Models = registry.New(db, e.Audit, registry.Options{})
	if e.Datasets, err = dataset.Open(d); err != nil {
		db.Close()
		return nil, err
	}
	if e.Plugins, err = pluginstore.OpenIn(d, pluginstore.Options{}); err != nil {
		db.Close()
		return nil, err
	}
	return e, nil
}

// Close closes the state database.
func (e *Enclave) Close() error { return e.DB.Close() }

// IngestEvent is the audit payload of an ingest: which version, from which providers, how many rows;
// no values and no identifiers.
type IngestEvent struct {
	Dataset  string              `json:"dataset"`
	Version  int                 `json:"version"`
	Class    string              `json:"class"`
	Subjects int64               `json:"subjects"`
	Sources  []IngestEventSource `json:"sources"`
	Rejected int64               `json:"rows_rejected"`
}

// IngestEventSource is one source of an ingest.
type IngestEventSource struct {
	Source      string `json:"source"`
	Provider    string `json:"provider"`
	Rows        int64  `json:"rows"`
	PlainSHA256 string `json:"content_sha256"`
}

// Ingest writes a new dataset version (see dataset.Store.Ingest) and records it in the audit log.
// actor names who ingested it. The version exists once Ingest returns; if the audit append then fails
// the error says so, and the version is still there.
func (e *Enclave) Ingest(ctx context.Context, actor string, spec *connectors.DatasetSpec, mappings []*connectors.Mapping,
	opts dataset.IngestOptions) (*dataset.Manifest, *connectors.Report, error) {
	m, rep, err := e.Datasets.Ingest(ctx, spec, mappings, opts)
	if err != nil {
		return m, rep, err
	}
	ev := IngestEvent{Dataset: m.Name, Version: m.Version, Class: m.Class, Subjects: m.Subjects, Rejected: rep.RowsRejected}
	for i, p := range m.Parts {
		ev.Sources = append(ev.Sources, IngestEventSource{Source: p.Source, Provider: m.Sources[i].Provider, Rows: p.Rows, PlainSHA256: p.PlainSHA256})
	}
	if _, aerr := e.Audit.Append(ctx, audit.Event{Kind: audit.KindIngest, Actor: actor,
		Subject: fmt.Sprintf("dataset %s v%d", m.Name, m.Version), Payload: ev}); aerr != nil {
		return m, rep, fmt.Errorf("dataset %s v%d was written, but recording it in the audit log failed: %w", m.Name, m.Version, aerr)
	}
	return m, rep, nil
}

// UploadPlugin stores a plugin binary (see pluginstore.Store.Put) and records the upload.
func (e *Enclave) UploadPlugin(ctx context.Context, r io.Reader, meta pluginstore.Meta) (pluginstore.Info, bool, error) {
	info, existed, err := e.Plugins.Put(ctx, r, meta)
	if err != nil {
		return info, existed, err
	}
	if existed {
		return info, existed, nil
	}
	if _, aerr := e.Audit.Append(ctx, audit.Event{Kind: audit.KindPluginUpload, Actor: meta.Uploader,
		Subject: info.Digest.String(), Payload: map[string]any{"name": info.Name, "bytes": info.Size}}); aerr != nil {
		return info, existed, fmt.Errorf("plugin %s was stored, but recording it in the audit log failed: %w", info.Digest, aerr)
	}
	return info, existed, nil
}

// VerifyAudit checks the audit log against the enclave's own public key and the heads given (from
// receipts already issued or from an earlier verification).
func (e *Enclave) VerifyAudit(ctx context.Context, known []audit.Head) (*audit.Report, error) {
	return audit.Verify(ctx, e.DB, e.Identity.Public(), known)
}
