package synthetic

import (
	"cmp"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// subject is what the bank's files need to know about an enterprise.
type subject struct {
	uscc      string
	defaulted bool
	weight    float64 // borrowerWeight
}

// chooseBorrowers returns the indexes, in ascending order, of the round(fraction·N) enterprises that
// are the bank's borrowers: a weighted sample without replacement (Efraimidis and Spirakis), which
// favours larger and older firms as banks do.
func chooseBorrowers(seed uint64, subjects []subject, fraction float64) []int {
	n := int(math.Round(fraction * float64(len(subjects))))
	type keyed struct {
		i   int
		key float64
	}
	keys := make([]keyed, len(subjects))
	for i, s := range subjects {
		u := stream(seed, streamBank, i).Float64()
		keys[i] = keyed{i, math.Log(u+1e-300) / s.weight}
	}
	slices.SortFunc(keys, func(a, b keyed) int {
		if c := cmp.Compare(b.key, a.key); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	out := make([]int, n)
	for k := range n {
		out[k] = keys[k].i
	}
	slices.Sort(out)
	return out
}

// writeLabels writes labels.csv: uscc,label,observation_date, label 1 for a default within 12 months
// of the observation date.
func writeLabels(w *csv.Writer, subjects []subject, borrowers []int, asOf time.Time) (defaults int, err error) {
	if err := w.Write([]string{"uscc", "label", "observation_date"}); err != nil {
		return 0, err
	}
	obs := asOf.Format(time.DateOnly)
	for _, i := range borrowers {
		label := "0"
		if subjects[i].defaulted {
			label, defaults = "1", defaults+1
		}
		if err := w.Write([]string{subjects[i].uscc, label, obs}); err != nil {
			return 0, err
		}
	}
	w.Flush()
	return defaults, w.Error()
}

// Authorization purposes, as authorizations.csv spells them.
const (
	PurposePreScreening       = "pre_screening"
	PurposeCreditApproval     = "credit_approval"
	PurposePostLoanMonitoring = "post_loan_monitoring"
	PurposeModelDevelopment   = "model_development"
)

var purposes = []struct {
	key, detail string
	weight      float64
}{
	{PurposeModelDevelopment, "联合建模实验室小微企业信用风险模型开发 credit risk model development in the joint modeling lab", 0.6},
	{PurposeCreditApproval, "小微企业经营贷款授信审批 credit approval of a business loan", 0.2},
	{PurposePostLoanMonitoring, "贷后风险监测 post-loan risk monitoring", 0.12},
	{PurposePreScreening, "授信前预筛选 pre-screening of credit applicants", 0.08},
}

// authItem is a catalog item an authorization may name; personal items are left out of more forms.
type authItem struct {
	key      string
	personal bool
}

// authWriter writes authorizations.csv and counts what it wrote.
type authWriter struct {
	w     *csv.Writer
	seed  uint64
	bank  string
	asOf  time.Time
	items []authItem
	n     int // records written
	sum   *Summary
}

// AuthorizationHeader is the header of authorizations.csv.
var AuthorizationHeader = []string{"id_type", "id", "grantee", "purpose", "purpose_detail", "items", "valid_from", "valid_until", "evidence"}

// write draws and writes enterprise i's authorization records: for a borrower, with probability
// rate, a current or (8 %) expired authorization, sometimes preceded by an expired one it renewed,
// and in 12 % of forms without some items; for other enterprises, rarely, a pre-screening one.
func (a *authWriter) write(i int, s subject, borrower bool, rate float64) error {
	r := stream(a.seed, streamAuth, i)
	if !borrower {
		if !bern(r, 0.04) {
			return nil
		}
		from := daysBefore(r, a.asOf, 0, 180)
		return a.record(s.uscc, purposes[3].key, purposes[3].detail, a.items, from, from.AddDate(1, 0, 0))
	}
	if !bern(r, rate) {
		return nil
	}
	a.sum.AuthorizedLabelled++
	p := purposes[pickWeighted(r, len(purposes), func(k int) float64 { return purposes[k].weight })]
	items := a.items
	if bern(r, 0.12) {
		items = dropItems(r, items)
	}
	if bern(r, 0.08) {
		from := daysBefore(r, a.asOf, 800, 1500)
		return a.record(s.uscc, p.key, p.detail, items, from, from.AddDate(1, 0, 0).AddDate(0, 0, -1))
	}
	from := daysBefore(r, a.asOf, 0, 365)
	if bern(r, 0.06) {
		old := from.AddDate(-2, 0, 0)
		if err := a.record(s.uscc, p.key, p.detail, a.items, old, from.AddDate(0, 0, -1)); err != nil {
			return err
		}
	}
	a.sum.CurrentlyAuthorized++
	return a.record(s.uscc, p.key, p.detail, items, from, from.AddDate(2+r.IntN(2), 0, 0).AddDate(0, 0, -1))
}

// dropItems returns items without one to three of them, personal ones more likely.
func dropItems(r *rand.Rand, items []authItem) []authItem {
	n := 1 + r.IntN(3)
	out := slices.Clone(items)
	for range n {
		if len(out) <= 1 {
			break
		}
		total := 0.0
		for _, it := range out {
			total += itemWeight(it)
		}
		u := r.Float64() * total
		k := len(out) - 1
		for j, it := range out {
			if u -= itemWeight(it); u < 0 {
				k = j
				break
			}
		}
		out = slices.Delete(out, k, k+1)
	}
	return out
}

func itemWeight(it authItem) float64 {
	if it.personal {
		return 4
	}
	return 1
}

func (a *authWriter) record(uscc, purpose, detail string, items []authItem, from, until time.Time) error {
	a.n++
	keys := make([]string, len(items))
	for k, it := range items {
		keys[k] = it.key
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "insitu synthetic authorization|%d|%s|%s|%d", a.seed, a.bank, uscc, a.n))
	evidence := fmt.Sprintf("auth-%06d.pdf#sha256=%s", a.n, hex.EncodeToString(sum[:]))
	a.sum.Authorizations++
	if until.Before(a.asOf) {
		a.sum.Expired++
	}
	return a.w.Write([]string{"uscc", uscc, a.bank, purpose, detail, strings.Join(keys, ";"),
		from.Format(time.DateOnly), until.Format(time.DateOnly), evidence})
}
