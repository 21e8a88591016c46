package dataset

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/apache/arrow/go/v17/arrow/array"

	"insitu/connectors"
	"insitu/connectors/ident"
)

// Check is one verification step and its outcome.
type Check struct {
	What   string `json:"what"`   // e.g. "manifest hmac", "part tax: blocks"
	OK     bool   `json:"ok"`     //
	Detail string `json:"detail"` // what was found; the error when not OK
}

// VerifyResult lists what Verify checked.
type VerifyResult struct {
	Name    string  `json:"name"`
	Version int     `json:"version"`
	Checks  []Check `json:"checks"`
	OK      bool    `json:"ok"`
}

func (r *VerifyResult) add(what string, err error, format string, args ...any) bool {
	c := Check{What: what, OK: err == nil, Detail: fmt.Sprintf(format, args...)}
	if err != nil {
		c.Detail = err.Error()
		r.OK = false
	}
	r.Checks = append(r.Checks, c)
	return err == nil
}

// Failed returns the checks that failed.
func (r *VerifyResult) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Verify checks a dataset version (the latest when version is 0) end to end: the manifest's HMAC;
// for every part, that it decrypts block by block, that its ciphertext and plaintext sizes, hashes and
// block count match the manifest, that it is an Arrow IPC stream with the manifest's columns and
// types, its row and distinct-subject counts, and that every subject identifier is valid; that the
// quality report decrypts and matches; and that the parts together hold the manifest's number of
// subjects. It returns the result of every check; the error wraps ErrVerify when any failed (and
// the cause, e.g. ErrTampered or encfile.ErrCorrupt, of the first failure).
func (s *Store) Verify(ctx context.Context, name string, version int) (*VerifyResult, error) {
	v, err := s.resolve(ctx, name, version)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Name: name, Version: v, OK: true}
	fail := func(cause error) (*VerifyResult, error) {
		failed := res.Failed()
		return res, &Error{Dataset: name, Version: v, Op: "verify",
			Err: fmt.Errorf("%w: %d of %d checks failed, first: %s: %w", ErrVerify, len(failed), len(res.Checks), failed[0].What, cause)}
	}
	m, err := s.loadManifest(ctx, name, v)
	if !res.add("manifest hmac", err, "%s authenticated with the master key", manifestFile) {
		return fail(err)
	}
	var first error
	note := func(err error) {
		if first == nil && err != nil {
			first = err
		}
	}
	all := map[string]struct{}{}
	for _, p := range m.Parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		note(s.verifyPart(ctx, m, p, res, all))
	}
	if first == nil {
		var err error
		if int64(len(all)) != m.Subjects {
			err = fmt.Errorf("%w: %d distinct subjects over all parts, the manifest says %d", ErrCorrupt, len(all), m.Subjects)
		}
		res.add("dataset: subjects", err, "%d distinct subjects", len(all))
		note(err)
	}
	q, err := s.readQuality(ctx, m)
	if err == nil {
		switch {
		case q.Dataset != m.Name || q.Version != m.Version:
			err = fmt.Errorf("%w: the quality report is of %s v%d", ErrCorrupt, q.Dataset, q.Version)
		case q.Report == nil || len(q.Report.Sources) != len(m.Parts):
			err = fmt.Errorf("%w: the quality report does not cover the %d sources", ErrCorrupt, len(m.Parts))
		}
	}
	res.add("quality report", err, "%s: %d blocks decrypted, sizes and hashes match", m.QualityReport.File, m.QualityReport.Blocks)
	note(err)
	if !res.OK {
		return fail(first)
	}
	return res, nil
}

// verifyPart checks one part, adding its checks to res and its subjects to all.
func (s *Store) verifyPart(ctx context.Context, m *Manifest, p Part, res *VerifyResult, all map[string]struct{}) error {
	what := "part " + p.Source
	pr, err := s.openPart(ctx, m, p)
	if !res.add(what+": open", err, "%s: data key unwrapped, identity matches, Arrow schema read", p.File) {
		return err
	}
	defer pr.close()
	names := schemaNames(pr.ipc.Schema())
	wantNames := append([]string{connectors.SubjectColumnName}, p.Columns...)
	err = nil
	if !slices.Equal(names, wantNames) {
		err = fmt.Errorf("%w: columns %v, the manifest says %v", ErrCorrupt, names, wantNames)
	} else {
		for i, f := range pr.ipc.Schema().Fields() {
			c, ok := m.Column(f.Name)
			if !ok || c.Type != f.Type.String() {
				err = fmt.Errorf("%w: column %q has type %s, the manifest says %s", ErrCorrupt, f.Name, f.Type, c.Type)
				break
			}
			if i > 0 && c.Source != p.Source {
				err = fmt.Errorf("%w: column %q belongs to source %q in the manifest", ErrCorrupt, f.Name, c.Source)
				break
			}
		}
	}
	res.add(what+": schema", err, "%d columns as in the manifest", len(names))
	schemaErr := err
	kind, kerr := ident.ParseKind(m.SubjectKind)
	var rows, batches, distinct, badIDs int64
	seen := map[string]struct{}{}
	var readErr error
	for {
		rec, err := pr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		batches++
		col, ok := rec.Column(0).(*array.String)
		if !ok {
			readErr = fmt.Errorf("%w: subject_id is not utf8", ErrCorrupt)
			break
		}
		for i := range col.Len() {
			v := col.Value(i)
			if kerr == nil && ident.Validate(kind, v) != nil {
				badIDs++
			}
			if _, dup := seen[v]; !dup {
				v = string([]byte(v))
				seen[v] = struct{}{}
				all[v] = struct{}{}
				distinct++
			}
		}
		rows += rec.NumRows()
	}
	if readErr == nil {
		readErr = pr.finish()
	}
	if !res.add(what+": decrypt and hashes", readErr, "%d blocks decrypted; ciphertext %d bytes and plaintext %d bytes, SHA-256 as in the manifest",
		p.Blocks, p.CipherBytes, p.PlainBytes) {
		return readErr
	}
	err = nil
	switch {
	case rows != p.Rows:
		err = fmt.Errorf("%w: %d rows, the manifest says %d", ErrCorrupt, rows, p.Rows)
	case batches != p.Batches:
		err = fmt.Errorf("%w: %d record batches, the manifest says %d", ErrCorrupt, batches, p.Batches)
	case distinct != p.Subjects:
		err = fmt.Errorf("%w: %d distinct subjects, the manifest says %d", ErrCorrupt, distinct, p.Subjects)
	}
	res.add(what+": rows", err, "%d rows in %d batches, %d distinct subjects", rows, batches, distinct)
	rowsErr := err
	err = kerr
	if err == nil && badIDs > 0 {
		err = fmt.Errorf("%w: %d subject identifiers fail the %s check", ErrCorrupt, badIDs, kind)
	}
	res.add(what+": identifiers", err, "every subject_id is a valid %s", m.SubjectKind)
	return cmp.Or(schemaErr, rowsErr, err)
}
