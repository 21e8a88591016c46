package consent

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"time"

	"insitu/connectors/ident"
)

// Authorizing keeps the subjects, given by identifier in canonical form, that hold at least one
// valid authorization for q.Grantee and q.Purpose at q.At, whatever catalog items it names, in the
// order given (a repeated subject counts once); q.Items is ignored. It is the set a bank may align
// its customers with (package psi): a subject that authorized no one, or only other banks or other
// purposes, is left out, so the bank cannot learn that it is on the platform.
func (r *Registry) Authorizing(ctx context.Context, q CohortQuery, subjects iter.Seq[string]) ([]string, error) {
	kind, err := ident.ParseKind(string(q.IDType))
	if err != nil {
		return nil, &FieldError{Field: "id_type", Rule: RuleIDType, Value: clip(string(q.IDType)), Message: err.Error()}
	}
	if !validGrantee(q.Grantee) {
		return nil, &FieldError{Field: "grantee", Rule: RuleGrantee, Value: clip(q.Grantee), Message: "not a party name"}
	}
	if _, err := ParsePurpose(string(q.Purpose)); err != nil {
		return nil, &FieldError{Field: "purpose", Rule: RulePurpose, Value: clip(string(q.Purpose)), Message: "not a purpose"}
	}
	if q.At.IsZero() {
		return nil, &FieldError{Field: "at", Rule: RuleDate, Message: "no time given"}
	}
	valid := map[string]bool{}
	err = r.db.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT a.identifier
			FROM consent_authorizations a LEFT JOIN consent_revocations v ON v.authorization_id = a.id
			WHERE a.id_type = ?1 AND a.grantee = ?2 AND a.purpose = ?3
				AND (v.revoked_at_ns IS NULL OR v.revoked_at_ns > ?4)
				AND a.valid_from <= ?5 AND a.valid_until >= ?5`,
			string(kind), q.Grantee, string(q.Purpose), q.At.UnixNano(), q.At.In(r.loc).Format(time.DateOnly))
		if err != nil {
			return err
		}
		defer rows.Close()
		var id string
		for n := 0; rows.Next(); n++ {
			if n%8192 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if err := rows.Scan(&id); err != nil {
				return err
			}
			valid[id] = true
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("consent: authorizing subjects: %w", err)
	}
	var kept []string
	for s := range subjects {
		if valid[s] {
			kept = append(kept, s)
			delete(valid, s)
		}
	}
	return kept, nil
}
