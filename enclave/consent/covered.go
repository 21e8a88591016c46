package consent

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"insitu/connectors/ident"
)

// coveredChunk bounds the identifiers of one Covered query.
const coveredChunk = 500

// Covered reports which of the given subjects (identifiers in canonical form) hold a valid
// authorization for q.Grantee and q.Purpose at q.At that covers every requested item needing one:
// the rule Cohort applies, for the few subjects of an online request (scoring, verification), looked
// up through the identifier index instead of ranking every authorization. When no requested item
// needs an authorization every subject is covered. It says nothing about why a subject is not.
func (r *Registry) Covered(ctx context.Context, q CohortQuery, subjects []string) (map[string]bool, error) {
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
	needed, err := NeedingAuthorization(r.cat, q.Items)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(subjects))
	if len(needed) == 0 {
		for _, s := range subjects {
			out[s] = true
		}
		return out, nil
	}
	err = r.db.ReadTx(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(subjects); start += coveredChunk {
			chunk := subjects[start:min(start+coveredChunk, len(subjects))]
			args := []any{string(kind), q.Grantee, string(q.Purpose), q.At.UnixNano(), q.At.In(r.loc).Format(time.DateOnly)}
			var conds []string
			for _, k := range needed {
				args = append(args, ";"+k+";")
				conds = append(conds, fmt.Sprintf("instr(';' || a.items || ';', ?%d) > 0", len(args)))
			}
			marks := make([]string, len(chunk))
			for i, s := range chunk {
				args = append(args, s)
				marks[i] = fmt.Sprintf("?%d", len(args))
			}
			rows, err := tx.QueryContext(ctx, `SELECT DISTINCT a.identifier
				FROM consent_authorizations a LEFT JOIN consent_revocations v ON v.authorization_id = a.id
				WHERE a.id_type = ?1 AND a.identifier IN (`+strings.Join(marks, ",")+`)
					AND a.grantee = ?2 AND a.purpose = ?3
					AND (v.revoked_at_ns IS NULL OR v.revoked_at_ns > ?4)
					AND a.valid_from <= ?5 AND a.valid_until >= ?5 AND `+strings.Join(conds, " AND "), args...)
			if err != nil {
				return err
			}
			var id string
			for rows.Next() {
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				out[id] = true
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("consent: covered subjects: %w", err)
	}
	return out, nil
}
