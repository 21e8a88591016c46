package consent

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strings"
	"time"

	"insitu/connectors/catalog"
	"insitu/connectors/ident"
)

// Reason is why Cohort left a subject out.
type Reason string

// The reasons, from the closest to being covered to the farthest. A subject with several
// authorizations is counted under the reason of the one that came closest.
const (
	// ReasonMissingItems: a current authorization for this bank and purpose that lacks a requested
	// item needing authorization.
	ReasonMissingItems Reason = "missing_items"
	// ReasonNotYetValid: valid only from a later day.
	ReasonNotYetValid Reason = "not_yet_valid"
	// ReasonExpired: valid only until an earlier day.
	ReasonExpired Reason = "expired"
	// ReasonRevoked: revoked.
	ReasonRevoked Reason = "revoked"
	// ReasonOtherPurpose: authorizations for this bank, for other purposes only.
	ReasonOtherPurpose Reason = "other_purpose"
	// ReasonOtherBank: authorizations for other banks only.
	ReasonOtherBank Reason = "other_bank"
	// ReasonNoAuthorization: no authorization at all.
	ReasonNoAuthorization Reason = "no_authorization"
)

// Reasons lists the reasons in order, closest first.
var Reasons = []Reason{ReasonMissingItems, ReasonNotYetValid, ReasonExpired, ReasonRevoked, ReasonOtherPurpose, ReasonOtherBank, ReasonNoAuthorization}

// rank orders the outcome for one authorization: 0 covers the request, then Reasons' order.
type rank uint8

const rankKept rank = 0

func (k rank) reason() Reason { return Reasons[k-1] }

const (
	rankMissingItems rank = iota + 1
	rankNotYetValid
	rankExpired
	rankRevoked
	rankOtherPurpose
	rankOtherBank
	rankNone
)

// CohortQuery is what a job asks of the registry.
type CohortQuery struct {
	// IDType is the kind of the subjects' identifiers (a dataset's subject kind).
	IDType  ident.Kind
	Grantee string // the bank that submitted the job
	Purpose Purpose
	// Items are the catalog items the job requests; only those with NeedsAuthorization need an
	// authorization.
	Items []string
	// At is when the job runs.
	At time.Time
}

// NeedingAuthorization returns the items among keys that need the subject's authorization, in
// catalog order. It fails on a key the catalog does not have.
func NeedingAuthorization(cat *catalog.Catalog, keys []string) ([]string, error) {
	want := map[string]bool{}
	for _, k := range keys {
		it, err := cat.Item(k)
		if err != nil {
			return nil, &FieldError{Field: "items", Rule: RuleItems, Value: clip(k), Message: "not a catalog item"}
		}
		if it.NeedsAuthorization {
			want[k] = true
		}
	}
	var out []string
	for _, it := range cat.Items() {
		if want[it.Key] {
			out = append(out, it.Key)
		}
	}
	return out, nil
}

// Cohort keeps the subjects, given by identifier in canonical form, whose valid authorizations for
// q.Grantee and q.Purpose at q.At cover every requested item that needs one, in the order given
// (a repeated subject counts once). lost counts the others by reason; it names no subject. When no
// requested item needs an authorization every subject is kept.
//
// The steward may see lost; the bank must see only len(kept).
func (r *Registry) Cohort(ctx context.Context, q CohortQuery, subjects iter.Seq[string]) (kept []string, lost map[Reason]int, err error) {
	kind, err := ident.ParseKind(string(q.IDType))
	if err != nil {
		return nil, nil, &FieldError{Field: "id_type", Rule: RuleIDType, Value: clip(string(q.IDType)), Message: err.Error()}
	}
	if !validGrantee(q.Grantee) {
		return nil, nil, &FieldError{Field: "grantee", Rule: RuleGrantee, Value: clip(q.Grantee), Message: "not a party name"}
	}
	if _, err := ParsePurpose(string(q.Purpose)); err != nil {
		return nil, nil, &FieldError{Field: "purpose", Rule: RulePurpose, Value: clip(string(q.Purpose)), Message: "not a purpose"}
	}
	if q.At.IsZero() {
		return nil, nil, &FieldError{Field: "at", Rule: RuleDate, Message: "no time given"}
	}
	needed, err := NeedingAuthorization(r.cat, q.Items)
	if err != nil {
		return nil, nil, err
	}
	best := map[string]rank{}
	var order []string
	for s := range subjects {
		if _, dup := best[s]; !dup {
			best[s] = rankNone
			order = append(order, s)
		}
	}
	lost = map[Reason]int{}
	if len(needed) == 0 {
		return order, lost, nil
	}
	// The database ranks each authorization against the query (see rank) and keeps each subject's
	// best.
	covers := make([]string, len(needed))
	args := []any{q.Grantee, string(q.Purpose), q.At.UnixNano(), q.At.In(r.loc).Format(time.DateOnly), string(kind)}
	for i, k := range needed {
		covers[i] = fmt.Sprintf("instr(';' || a.items || ';', ?%d) > 0", len(args)+1)
		args = append(args, ";"+k+";")
	}
	query := fmt.Sprintf(`SELECT a.identifier, MIN(CASE
			WHEN a.grantee <> ?1 THEN %d
			WHEN a.purpose <> ?2 THEN %d
			WHEN v.revoked_at_ns IS NOT NULL AND v.revoked_at_ns <= ?3 THEN %d
			WHEN ?4 < a.valid_from THEN %d
			WHEN ?4 > a.valid_until THEN %d
			WHEN %s THEN %d
			ELSE %d END)
		FROM consent_authorizations a LEFT JOIN consent_revocations v ON v.authorization_id = a.id
		WHERE a.id_type = ?5 GROUP BY a.identifier`,
		rankOtherBank, rankOtherPurpose, rankRevoked, rankNotYetValid, rankExpired, strings.Join(covers, " AND "), rankKept, rankMissingItems)
	err = r.db.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var id sql.RawBytes
		var k rank
		for n := 0; rows.Next(); n++ {
			if n%8192 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if err := rows.Scan(&id, &k); err != nil {
				return err
			}
			if _, ok := best[string(id)]; ok {
				best[string(id)] = k
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("consent: cohort: %w", err)
	}
	for _, s := range order {
		if k := best[s]; k == rankKept {
			kept = append(kept, s)
		} else {
			lost[k.reason()]++
		}
	}
	return kept, lost, nil
}
