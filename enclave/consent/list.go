package consent

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"insitu/connectors/ident"
)

// Filter picks authorizations to list. Zero fields do not filter.
type Filter struct {
	Grantee string
	Purpose Purpose
	// IDType and Identifier pick one subject's authorizations; both or neither.
	IDType     ident.Kind
	Identifier string
	// Status keeps the authorizations with this status at At.
	Status Status
	// At is the time statuses are computed for; now when zero.
	At time.Time
	// AfterID and Limit page through the list in id order; Limit 0 means 1000.
	AfterID int64
	Limit   int
}

const listColumns = `a.id, a.id_type, a.identifier, a.grantee, a.purpose, a.purpose_detail, a.items, a.valid_from, a.valid_until,
	a.evidence, a.evidence_digest, a.granted_at_ns, a.granted_by, a.source, v.revoked_at_ns, v.revoked_by, v.reason`

// List returns the authorizations the filter picks, in id order, identifiers masked.
func (r *Registry) List(ctx context.Context, f Filter) ([]Authorization, error) {
	at := f.At
	if at.IsZero() {
		at = r.now()
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	where := []string{"a.id > ?"}
	args := []any{f.AfterID}
	if f.Grantee != "" {
		where, args = append(where, "a.grantee = ?"), append(args, f.Grantee)
	}
	if f.Purpose != "" {
		where, args = append(where, "a.purpose = ?"), append(args, string(f.Purpose))
	}
	if f.IDType != "" || f.Identifier != "" {
		kind, id, err := r.selector(Selector{IDType: f.IDType, Identifier: f.Identifier})
		if err != nil {
			return nil, err
		}
		where, args = append(where, "a.id_type = ? AND a.identifier = ?"), append(args, string(kind), id)
	}
	switch f.Status {
	case "":
	case StatusCurrent, StatusExpired, StatusNotYetValid, StatusRevoked:
		// Filtered below: the status depends on the time zone.
	default:
		return nil, &FieldError{Field: "status", Rule: "status", Value: clip(string(f.Status)), Message: "not one of current, not_yet_valid, expired, revoked"}
	}
	q := `SELECT ` + listColumns + ` FROM consent_authorizations a LEFT JOIN consent_revocations v ON v.authorization_id = a.id
		WHERE ` + strings.Join(where, " AND ") + ` ORDER BY a.id`
	var out []Authorization
	err := r.db.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() && len(out) < limit {
			a, err := r.scan(rows, at)
			if err != nil {
				return err
			}
			if f.Status == "" || a.Status == f.Status {
				out = append(out, *a)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("consent: list: %w", err)
	}
	return out, nil
}

func (r *Registry) scan(rows *sql.Rows, at time.Time) (*Authorization, error) {
	var a Authorization
	var kind, identifier, purpose, items string
	var granted int64
	var revAt sql.NullInt64
	var revBy, reason sql.NullString
	if err := rows.Scan(&a.ID, &kind, &identifier, &a.Grantee, &purpose, &a.PurposeDetail, &items, &a.ValidFrom, &a.ValidUntil,
		&a.Evidence, &a.EvidenceDigest, &granted, &a.GrantedBy, &a.Source, &revAt, &revBy, &reason); err != nil {
		return nil, err
	}
	a.IDType, a.Subject, a.Purpose, a.Items = ident.Kind(kind), ident.Mask(identifier), Purpose(purpose), strings.Split(items, ";")
	// Free text is the steward's; an identifier typed into it is masked too.
	a.PurposeDetail, a.Evidence, a.Source = redact(a.PurposeDetail), redact(a.Evidence), redact(a.Source)
	a.GrantedAt = time.Unix(0, granted).UTC()
	var revokedAt *time.Time
	if revAt.Valid {
		t := time.Unix(0, revAt.Int64).UTC()
		revokedAt = &t
		a.Revocation = &Revocation{At: t, By: revBy.String, Reason: redact(reason.String)}
	}
	a.Status = r.status(a.ValidFrom, a.ValidUntil, revokedAt, at)
	return &a, nil
}

// Get returns authorization id.
func (r *Registry) Get(ctx context.Context, id int64) (*Authorization, error) {
	a, err := r.get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("consent: authorization %d: %w", id, err)
	}
	return a, nil
}

func (r *Registry) get(ctx context.Context, id int64) (*Authorization, error) {
	var a *Authorization
	err := r.db.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+listColumns+` FROM consent_authorizations a
			LEFT JOIN consent_revocations v ON v.authorization_id = a.id WHERE a.id = ?`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return err
			}
			return ErrNotFound
		}
		a, err = r.scan(rows, r.now())
		return err
	})
	return a, err
}

// BankCounts counts one grantee's authorizations at a time.
type BankCounts struct {
	Grantee        string `json:"grantee"`
	Authorizations int    `json:"authorizations"`
	// Subjects counts distinct subjects with any authorization; CurrentSubjects those with at least
	// one current authorization.
	Subjects        int `json:"subjects"`
	CurrentSubjects int `json:"current_subjects"`
	Current         int `json:"current"`
	NotYetValid     int `json:"not_yet_valid"`
	Expired         int `json:"expired"`
	Revoked         int `json:"revoked"`
}

// Counts returns, for each grantee (all when grantee is empty), how many authorizations it holds in
// each status at time at, by grantee name.
func (r *Registry) Counts(ctx context.Context, grantee string, at time.Time) ([]BankCounts, error) {
	day := at.In(r.loc).Format(time.DateOnly)
	var out []BankCounts
	err := r.db.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
WITH s AS (
	SELECT a.grantee, a.id_type, a.identifier,
		CASE WHEN v.revoked_at_ns IS NOT NULL AND v.revoked_at_ns <= ?1 THEN 'revoked'
		     WHEN ?2 < a.valid_from THEN 'not_yet_valid'
		     WHEN ?2 > a.valid_until THEN 'expired'
		     ELSE 'current' END AS status
	FROM consent_authorizations a LEFT JOIN consent_revocations v ON v.authorization_id = a.id
	WHERE ?3 = '' OR a.grantee = ?3
)
SELECT grantee, COUNT(*),
	COUNT(DISTINCT id_type || ':' || identifier),
	COUNT(DISTINCT CASE WHEN status = 'current' THEN id_type || ':' || identifier END),
	SUM(status = 'current'), SUM(status = 'not_yet_valid'), SUM(status = 'expired'), SUM(status = 'revoked')
FROM s GROUP BY grantee ORDER BY grantee`, at.UnixNano(), day, grantee)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c BankCounts
			if err := rows.Scan(&c.Grantee, &c.Authorizations, &c.Subjects, &c.CurrentSubjects, &c.Current, &c.NotYetValid, &c.Expired, &c.Revoked); err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("consent: counts: %w", err)
	}
	return out, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
