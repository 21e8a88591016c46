package enclave

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/cohort"
	"insitu/enclave/datadir"
	"insitu/enclave/store"
)

// A bank's labels reach the enclave sealed to its identity (cohort.SealLabels). The enclave keeps the
// sealed file as it arrived, under its SHA-256, which the bank's job manifest names; it opens the
// file only to validate it at upload and to run a job of the bank that uploaded it.

// KindLabelsUpload is the audit kind of a label upload.
const KindLabelsUpload audit.Kind = "labels_upload"

// MaxSealedLabels bounds a sealed label file: about four million labelled subjects.
const MaxSealedLabels = 256 << 20

// ErrLabelsNotFound is returned for a label digest the enclave does not hold for the bank asking.
var ErrLabelsNotFound = errors.New("labels not found")

// labelMigrations create the index of uploaded label files.
var labelMigrations = []store.Migration{{
	Scope: "labels", Version: 1, Name: "create labels",
	SQL: `CREATE TABLE labels (
		digest      TEXT PRIMARY KEY,
		bank        TEXT NOT NULL,
		name        TEXT NOT NULL,
		subjects    INTEGER NOT NULL,
		positives   INTEGER NOT NULL,
		bytes       INTEGER NOT NULL,
		uploaded_at TEXT NOT NULL
	)`,
}}

// LabelsInfo describes an uploaded label file: counts only, no identifiers and no labels.
type LabelsInfo struct {
	// Digest is "sha256:" and the hex SHA-256 of the sealed file: what a manifest's labels names.
	Digest    string    `json:"digest"`
	Bank      string    `json:"bank"`
	Name      string    `json:"name"`
	Subjects  int       `json:"subjects"`
	Positives int       `json:"positives"`
	Bytes     int64     `json:"bytes"`
	Uploaded  time.Time `json:"uploaded"`
}

// labelsDir is the folder of sealed label files inside the data directory.
func (e *Enclave) labelsDir() (string, error) { return e.Dir.Sub("labels") }

// UploadLabels stores a bank's sealed label file. It opens the file with the enclave's identity and
// validates it (identifiers, duplicates, label values: errors name the row), stores it under its
// digest and records the upload in the audit log. Uploading the same file again returns the stored
// one. name is the file's name, used in errors.
func (e *Enclave) UploadLabels(ctx context.Context, bank, name string, sealed []byte) (LabelsInfo, error) {
	if len(sealed) > MaxSealedLabels {
		return LabelsInfo{}, fmt.Errorf("%w: %s is %d bytes, more than the %d a sealed label file may have",
			cohort.ErrSealed, name, len(sealed), MaxSealedLabels)
	}
	sum := sha256.Sum256(sealed)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if info, err := e.labelsInfo(ctx, digest); err == nil {
		if info.Bank != bank {
			return LabelsInfo{}, fmt.Errorf("labels %s: uploaded by another party", digest)
		}
		return info, nil
	} else if !errors.Is(err, ErrLabelsNotFound) {
		return LabelsInfo{}, err
	}
	l, err := cohort.OpenLabels(e.Identity, sealed, name)
	if err != nil {
		return LabelsInfo{}, err
	}
	info := LabelsInfo{Digest: digest, Bank: bank, Name: filepath.Base(name), Subjects: l.Len(), Positives: l.Positives(),
		Bytes: int64(len(sealed)), Uploaded: time.Now().UTC().Truncate(time.Second)}
	dir, err := e.labelsDir()
	if err != nil {
		return LabelsInfo{}, err
	}
	path := filepath.Join(dir, hex.EncodeToString(sum[:])+".sealed")
	if err := datadir.WriteFileAtomic(path, sealed, 0o600); err != nil {
		return LabelsInfo{}, fmt.Errorf("storing labels %s: %w", digest, err)
	}
	err = e.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO labels (digest, bank, name, subjects, positives, bytes, uploaded_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, digest, bank, info.Name, info.Subjects, info.Positives, info.Bytes,
			info.Uploaded.Format(time.RFC3339)); err != nil {
			return err
		}
		_, err := e.Audit.AppendTx(ctx, tx, audit.Event{Kind: KindLabelsUpload, Actor: bank, Subject: digest,
			Payload: map[string]any{"subjects": info.Subjects, "bytes": info.Bytes}})
		return err
	})
	if err != nil {
		// The file without its index row is unreachable; remove it so nothing half-stored remains.
		_ = os.Remove(path)
		return LabelsInfo{}, fmt.Errorf("recording labels %s: %w", digest, err)
	}
	return info, nil
}

func (e *Enclave) labelsInfo(ctx context.Context, digest string) (LabelsInfo, error) {
	var info LabelsInfo
	var at string
	err := e.DB.ReadTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT digest, bank, name, subjects, positives, bytes, uploaded_at FROM labels WHERE digest = ?`,
			digest).Scan(&info.Digest, &info.Bank, &info.Name, &info.Subjects, &info.Positives, &info.Bytes, &at)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return LabelsInfo{}, fmt.Errorf("%w: %s", ErrLabelsNotFound, digest)
	}
	if err != nil {
		return LabelsInfo{}, err
	}
	info.Uploaded, _ = time.Parse(time.RFC3339, at)
	return info, nil
}

// ListLabels lists the label files bank uploaded (every bank's when bank is empty), oldest first.
func (e *Enclave) ListLabels(ctx context.Context, bank string) ([]LabelsInfo, error) {
	var out []LabelsInfo
	err := e.DB.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT digest, bank, name, subjects, positives, bytes, uploaded_at FROM labels
			WHERE ? = '' OR bank = ? ORDER BY uploaded_at, digest`, bank, bank)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var info LabelsInfo
			var at string
			if err := rows.Scan(&info.Digest, &info.Bank, &info.Name, &info.Subjects, &info.Positives, &info.Bytes, &at); err != nil {
				return err
			}
			info.Uploaded, _ = time.Parse(time.RFC3339, at)
			out = append(out, info)
		}
		return rows.Err()
	})
	return out, err
}

// OpenJobLabels opens the labels with the given digest for a job of bank: only the bank that
// uploaded a label file may use it (ErrLabelsNotFound otherwise, as for an unknown digest).
func (e *Enclave) OpenJobLabels(ctx context.Context, bank, digest string) (*cohort.Labels, error) {
	digest = strings.ToLower(digest)
	info, err := e.labelsInfo(ctx, digest)
	if err != nil {
		return nil, err
	}
	if info.Bank != bank {
		return nil, fmt.Errorf("%w: %s", ErrLabelsNotFound, digest)
	}
	dir, err := e.labelsDir()
	if err != nil {
		return nil, err
	}
	sealed, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(digest, "sha256:")+".sealed"))
	if err != nil {
		return nil, fmt.Errorf("labels %s: %w", digest, err)
	}
	if sum := sha256.Sum256(sealed); "sha256:"+hex.EncodeToString(sum[:]) != digest {
		return nil, fmt.Errorf("labels %s: the stored file no longer matches its digest", digest)
	}
	return cohort.OpenLabels(e.Identity, sealed, info.Name)
}
