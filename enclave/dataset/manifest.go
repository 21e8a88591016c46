package dataset

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Manifest describes one dataset version. It is stored in plaintext beside the encrypted parts and
// authenticated with an HMAC under a key derived from the master key; it holds no value of the data,
// only its shape, provenance and a quality summary.
type Manifest struct {
	Format        string    `json:"format"`         // ManifestFormat
	FormatVersion int       `json:"format_version"` // 1
	Name          string    `json:"name"`
	Version       int       `json:"version"`
	Class         string    `json:"class"`        // platform, public or synthetic
	SubjectKind   string    `json:"subject_kind"` // identifier kind of subject_id: uscc, resident_id, opaque
	Created       time.Time `json:"created"`
	Description   string    `json:"description,omitempty"`
	// Subjects is the number of distinct subjects over all parts: the rows Scan returns.
	Subjects int64 `json:"subjects"`
	// Columns is the schema Scan returns: subject_id first, then every part's columns in part order.
	Columns []Column `json:"columns"`
	Parts   []Part   `json:"parts"`
	// Sources says where each part came from, in part order.
	Sources []Source `json:"sources"`
	// Quality summarises the ingest's data-quality report per source; the full report (with
	// data-dependent figures such as min, max and distinct counts) is the encrypted QualityReport.
	Quality       []SourceQuality `json:"quality"`
	QualityReport FileInfo        `json:"quality_report"`
}

// ManifestFormat is the value of Manifest.Format.
const ManifestFormat = "insitu-dataset"

// Column is one column of a dataset, with what it means and where it came from.
type Column struct {
	Name        string `json:"name"`           // "subject_id", "<item>.<field>" or "custom.<key>"
	Type        string `json:"type"`           // Arrow type: utf8, int64, float64, bool, date32
	CatalogType string `json:"catalog_type"`   // int, float, bool, date, string, enum, id
	Item        string `json:"item,omitempty"` // catalog item key, or "custom"
	Field       string `json:"field,omitempty"`
	Unit        string `json:"unit,omitempty"`
	Provider    string `json:"provider"`    // empty for subject_id, which every source provides
	Source      string `json:"source"`      // empty for subject_id
	Sensitivity int    `json:"sensitivity"` // 1 public, 2 confidential, 3 personal
	IDKind      string `json:"id_kind,omitempty"`
	Role        string `json:"role,omitempty"`
	NameZH      string `json:"name_zh,omitempty"`
	NameEN      string `json:"name_en,omitempty"`
}

// FileInfo identifies one encrypted file of a version and what it must decrypt to.
type FileInfo struct {
	File string `json:"file"`
	// Blocks is the number of encrypted blocks.
	Blocks int64 `json:"blocks"`
	// PlainBytes and PlainSHA256 are the size and SHA-256 of the plaintext (for a part, the Arrow
	// IPC stream).
	PlainBytes  int64  `json:"plain_bytes"`
	PlainSHA256 string `json:"plain_sha256"`
	// CipherBytes and CipherSHA256 are the size and SHA-256 of the file as stored.
	CipherBytes  int64  `json:"cipher_bytes"`
	CipherSHA256 string `json:"cipher_sha256"`
}

// Part is one source's rows, stored as a compressed Arrow IPC stream in one encrypted file.
type Part struct {
	Source string `json:"source"`
	FileInfo
	Rows     int64    `json:"rows"`
	Subjects int64    `json:"subjects"` // distinct subjects (equal to Rows: a source has one row per subject)
	Columns  []string `json:"columns"`  // column names after subject_id
	Batches  int64    `json:"batches"`  // Arrow record batches
}

// Source is where a part came from.
type Source struct {
	Name         string `json:"name"`
	Provider     string `json:"provider"`
	ProviderName string `json:"provider_name,omitempty"`
	Format       string `json:"format"`
	// File is the source file's base name; empty for postgres.
	File string `json:"file,omitempty"`
	// FileSHA256 and FileBytes identify the source file's content as read; empty for postgres.
	FileSHA256 string `json:"file_sha256,omitempty"`
	FileBytes  int64  `json:"file_bytes,omitempty"`
	// QuerySHA256 identifies a postgres source's query.
	QuerySHA256 string `json:"query_sha256,omitempty"`
	// MappingSHA256 identifies the mapping file used.
	MappingSHA256 string `json:"mapping_sha256,omitempty"`
}

// SourceQuality is the plaintext quality summary of one source: counts and completeness only.
type SourceQuality struct {
	Source       string `json:"source"`
	RowsRead     int64  `json:"rows_read"`
	RowsAccepted int64  `json:"rows_accepted"`
	RowsRejected int64  `json:"rows_rejected"`
	InvalidIDs   int64  `json:"invalid_ids"`
	Duplicates   int64  `json:"duplicate_subjects"`
	// Completeness is, per column, the share of accepted rows with a value (0..1).
	Completeness map[string]float64 `json:"completeness"`
}

// Column returns the column with the given name.
func (m *Manifest) Column(name string) (Column, bool) {
	for _, c := range m.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Rows returns the number of rows over all parts.
func (m *Manifest) Rows() int64 {
	var n int64
	for _, p := range m.Parts {
		n += p.Rows
	}
	return n
}

const (
	manifestFile    = "manifest.json"
	manifestMACFile = "manifest.hmac"
	qualityFile     = "quality.json.enc"
)

func partFile(source string) string { return "part-" + source + ".arrows.enc" }

// fileIdentity is the authenticated identity of an encrypted file of a version.
func fileIdentity(name string, version int, file string) string {
	return "insitu dataset " + name + " v" + strconv.Itoa(version) + " " + file
}

// manifestMAC returns the HMAC of a manifest's bytes, bound to the dataset's name and version so that
// a manifest cannot be moved to another version.
func manifestMAC(key []byte, name string, version int, data []byte) []byte {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "insitu dataset manifest v1\x00%s\x00%d\x00", name, version)
	mac.Write(data)
	return mac.Sum(nil)
}

func (s *Store) writeManifest(ctx context.Context, st Stage, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := writeStageFile(ctx, st, manifestFile, data); err != nil {
		return err
	}
	mac := hex.EncodeToString(manifestMAC(s.macKey, m.Name, m.Version, data)) + "\n"
	return writeStageFile(ctx, st, manifestMACFile, []byte(mac))
}

func writeStageFile(ctx context.Context, st Stage, file string, data []byte) error {
	w, err := st.Create(ctx, file)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func readAll(ctx context.Context, stor Storage, name string, version int, file string, limit int64) ([]byte, error) {
	r, err := stor.Open(ctx, name, version, file)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", file, limit)
	}
	return data, nil
}

// loadManifest reads a version's manifest and checks its HMAC.
func (s *Store) loadManifest(ctx context.Context, name string, version int) (*Manifest, error) {
	fail := func(err error) (*Manifest, error) {
		return nil, &Error{Dataset: name, Version: version, Op: "read manifest", Err: err}
	}
	data, err := readAll(ctx, s.storage, name, version, manifestFile, 64<<20)
	if err != nil {
		return fail(err)
	}
	macHex, err := readAll(ctx, s.storage, name, version, manifestMACFile, 1024)
	if err != nil {
		return fail(fmt.Errorf("%w: %s: %v", ErrTampered, manifestMACFile, err))
	}
	mac, err := hex.DecodeString(string(bytes.TrimSpace(macHex)))
	if err != nil || !hmac.Equal(mac, manifestMAC(s.macKey, name, version, data)) {
		return fail(fmt.Errorf("%w: the manifest's HMAC does not match: the master key is not the one the dataset was written with, or the manifest was altered", ErrTampered))
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrCorrupt, err))
	}
	if m.Format != ManifestFormat || m.FormatVersion != 1 {
		return fail(fmt.Errorf("%w: manifest format %q version %d, this insitu reads %q version 1", ErrCorrupt, m.Format, m.FormatVersion, ManifestFormat))
	}
	if m.Name != name || m.Version != version {
		return fail(fmt.Errorf("%w: the manifest is of %s v%d", ErrCorrupt, m.Name, m.Version))
	}
	if len(m.Parts) != len(m.Sources) || len(m.Parts) == 0 {
		return fail(fmt.Errorf("%w: %d parts and %d sources", ErrCorrupt, len(m.Parts), len(m.Sources)))
	}
	var rows int64
	for i, p := range m.Parts {
		if !ValidName(p.Source) || p.File != partFile(p.Source) || m.Sources[i].Name != p.Source {
			return fail(fmt.Errorf("%w: part of source %q in file %q", ErrCorrupt, p.Source, p.File))
		}
		if p.Rows < 0 || p.Subjects < 0 || p.Blocks < 1 || p.PlainBytes < 0 || p.CipherBytes < 0 {
			return fail(fmt.Errorf("%w: negative counts in part %q", ErrCorrupt, p.Source))
		}
		rows += p.Rows
	}
	if m.Subjects < 0 || m.Subjects > rows {
		return fail(fmt.Errorf("%w: %d subjects in %d rows", ErrCorrupt, m.Subjects, rows))
	}
	if len(m.Columns) == 0 || m.Columns[0].Name != "subject_id" || m.QualityReport.File != qualityFile {
		return fail(fmt.Errorf("%w: no subject_id column or quality report", ErrCorrupt))
	}
	return &m, nil
}

// Hash returns "sha256:" and the hex SHA-256 of the manifest's JSON encoding: what a receipt names
// the dataset version by. The manifest holds the hashes of every part, so the hash commits to the
// data too.
func (m *Manifest) Hash() string {
	b, err := json.Marshal(m)
	if err != nil {
		panic("dataset: manifest does not encode: " + err.Error()) // every field is plain data
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
