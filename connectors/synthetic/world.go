package synthetic

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"insitu/connectors/ident"
)

// The generative model. Every enterprise draws, from its own random stream:
//
//   - where and what it is: division, industry, age (registration date) and size (headcount);
//   - a latent weakness w, about standard normal, made worse by youth, small size, a risky sector
//     or region, plus an idiosyncratic part;
//   - a 12-month default probability pd = sigmoid(defaultBase + defaultWeak·w + defaultHidden·u),
//     where u is a shock no source observes (so no model can be perfect);
//   - every provider's record, each a noisy, often zero-inflated and heavy-tailed view of size, age
//     and w: arrears appear more often and larger the weaker the firm, healthy firms win tenders
//     and own property, and so on.
//
// The constants below were calibrated so that the default rate among a bank's borrowers sits
// near 7 % and a plaintext logistic regression on the standardised numeric columns of the sources
// reaches a test AUC near 0.78 (see the package tests).
const (
	defaultBase   = -3.65
	defaultWeak   = 1.7
	defaultHidden = 0.55

	// weakIdio scales the part of the weakness that size, age, sector and region do not explain.
	weakIdio = 0.92
)

// person is a natural person connected with an enterprise.
type person struct {
	name   string
	id     string // resident identity number
	birth  time.Time
	female bool
}

// enterprise is one synthetic enterprise: its identity, its latent state and the rows every
// provider holds about it.
type enterprise struct {
	idx  int
	uscc string
	name string
	word string // the sector word of the name, e.g. 诊所 or 大药房
	// practiceNo is a medical institution's practice licence number (医疗机构执业许可证).
	practiceNo string
	address    string
	div        *division
	ind        *industry
	regDate    time.Time
	ageYears   float64
	zAge       float64 // standardised log age
	zSize      float64 // standardised log headcount
	employees  int
	capital    float64 // registered (subscribed) capital, CNY
	revenue    float64 // annual revenue, CNY, whether filed or not
	growth     float64 // headcount growth over the last 12 months
	insured    int     // employees with social insurance
	base       float64 // average monthly contribution base per employee, CNY
	// pensionArrears is the months of pension arrears, which medical insurance arrears follow.
	pensionArrears int

	weak      float64 // latent weakness
	pd        float64 // 12-month default probability
	defaulted bool
	// borrowerWeight tilts a bank's choice of borrowers towards larger, older firms.
	borrowerWeight float64

	rep     person
	marital string

	rows []row // one per sourceDefs entry
}

// row returns the enterprise's row in the source key and marks it present.
func (e *enterprise) row(key string) *row {
	r := &e.rows[sourceIndex[key]]
	r.present = true
	return r
}

var sourceIndex = func() map[string]int {
	m := make(map[string]int, len(sourceDefs))
	for i, d := range sourceDefs {
		m[d.key] = i
	}
	return m
}()

// world holds what every enterprise's generation shares.
type world struct {
	seed uint64
	asOf time.Time
	seen map[string]bool // credit codes already issued
}

// Stream tags separate the random streams of the generator's parts, so that changing, say, the
// label fraction never changes the enterprises.
const (
	streamEnterprise uint64 = 0x656e74 // "ent"
	streamBank       uint64 = 0x62616e6b
	streamAuth       uint64 = 0x61757468
)

// splitmix64 is a bijective 64-bit mixer (Steele, Lea, Flood 2014).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// stream returns the random stream number i of the part tagged tag under seed.
func stream(seed, tag uint64, i int) *rand.Rand {
	s1 := splitmix64(seed ^ splitmix64(tag))
	s2 := splitmix64(s1 ^ splitmix64(uint64(i)+1))
	return rand.New(rand.NewPCG(s1, s2))
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// bern returns true with probability p.
func bern(r *rand.Rand, p float64) bool { return r.Float64() < p }

// chance returns true with probability sigmoid(base + slope·x).
func chance(r *rand.Rand, base, slope, x float64) bool { return bern(r, sigmoid(base+slope*x)) }

// logNormal returns exp(mu + sigma·N(0,1)).
func logNormal(r *rand.Rand, mu, sigma float64) float64 { return math.Exp(mu + sigma*r.NormFloat64()) }

// poisson returns a Poisson(lambda) draw (Knuth's method; lambda is small here).
func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

// round2 rounds to cents.
func round2(x float64) float64 { return math.Round(x*100) / 100 }

// daysBefore returns a date between lo and hi days before t.
func daysBefore(r *rand.Rand, t time.Time, lo, hi int) time.Time {
	return t.AddDate(0, 0, -(lo + r.IntN(hi-lo+1)))
}

// dateBetween returns a date uniformly between a and b (a before b).
func dateBetween(r *rand.Rand, a, b time.Time) time.Time {
	days := int(b.Sub(a).Hours() / 24)
	if days <= 0 {
		return a
	}
	return a.AddDate(0, 0, r.IntN(days+1))
}

// newEnterprise draws enterprise i into e, reusing e's rows.
func (w *world) newEnterprise(i int, e *enterprise) {
	r := stream(w.seed, streamEnterprise, i)
	rows := e.rows
	for k := range rows {
		rows[k].reset()
	}
	*e = enterprise{idx: i, rows: rows}
	e.div = &divisions[pickWeighted(r, len(divisions), func(k int) float64 { return divisions[k].weight })]
	e.ind = &industries[pickWeighted(r, len(industries), func(k int) float64 { return industries[k].weight })]
	for {
		e.uscc = ident.NewUSCC(r, e.div.code)
		if !w.seen[e.uscc] {
			w.seen[e.uscc] = true
			break
		}
	}

	// Age: log-normal around 7 years, from 4 months to 40 years.
	e.zAge = r.NormFloat64()
	e.ageYears = clamp(math.Exp(math.Log(7)+0.75*e.zAge), 0.33, 40)
	e.regDate = w.asOf.AddDate(0, 0, -int(e.ageYears*365.25))

	// Size: log-normal headcount, growing with age.
	e.zSize = 0.35*e.zAge + math.Sqrt(1-0.35*0.35)*r.NormFloat64()
	e.employees = max(1, int(math.Round(math.Exp(e.ind.logEmp+1.05*e.zSize))))
	e.capital = round2(math.Round(logNormal(r, math.Log(float64(e.employees))+math.Log(150000), 0.9)/10000) * 10000)

	// The latent weakness: an explained part (variance about 0.13) plus an idiosyncratic one.
	explained := -0.22*e.zAge - 0.18*e.zSize + e.ind.risk + e.div.risk
	e.weak = explained + weakIdio*r.NormFloat64()
	e.pd = sigmoid(defaultBase + defaultWeak*e.weak + defaultHidden*r.NormFloat64())
	e.defaulted = bern(r, e.pd)
	e.borrowerWeight = math.Exp(0.25*e.zSize + 0.15*e.zAge)
	e.revenue = round2(float64(e.employees) * e.ind.revPerEmp * logNormal(r, -0.12*e.weak, 0.6))
	e.growth = clamp(0.04-0.11*e.weak+0.14*r.NormFloat64(), -0.6, 1.5)
	e.insured = max(1, int(math.Round(float64(e.employees)*clamp(0.8+0.12*r.NormFloat64()-0.04*e.weak, 0.2, 1))))
	e.base = math.Round(logNormal(r, math.Log(6500)-0.05*e.weak, 0.25))

	e.word = pick(r, e.ind.word)
	e.name = e.div.short + tradeName(r) + e.word + "有限公司"
	if institution, _, _ := medicalKind(e.word); institution {
		e.practiceNo = fmt.Sprintf("PDY%05d%s17D2112", r.IntN(100000), e.div.code)
	}
	city := e.div.city
	if city == e.div.province { // a municipality: 上海市浦东新区, not 上海市上海市浦东新区
		city = ""
	}
	e.address = e.div.province + city + e.div.district + pick(r, roads) + strconv.Itoa(1+r.IntN(999)) + "号"

	// The legal representative, usually also the owner: 26 to 71 years old, older in older firms.
	e.rep.female = bern(r, 0.28)
	e.rep.name = personName(r, e.rep.female)
	ageRep := clamp(44+0.4*e.ageYears+8*r.NormFloat64(), 26, 71)
	e.rep.birth = daysBefore(r, w.asOf, int(ageRep*365.25), int(ageRep*365.25)+364)
	e.rep.id = ident.NewResidentID(r, pickRegion(r, e.div), e.rep.birth, e.rep.female)
	e.marital = maritalStatus(r, ageRep, e.weak)

	w.drawRegistry(r, e)
	w.drawTax(r, e)
	w.drawCourt(r, e)
	w.drawCustoms(r, e)
	w.drawEnvironment(r, e)
	w.drawSocial(r, e)
	w.drawMedical(r, e)
	w.drawIP(r, e)
	w.drawEstate(r, e)
	w.drawScience(r, e)
	w.drawAgriculture(r, e)
	w.drawTrading(r, e)
	w.drawLicences(r, e)
	w.drawUtilities(r, e)
	w.drawCivil(r, e)
}

// pickRegion returns the address code of a person's resident id: mostly the enterprise's own
// division, sometimes another.
func pickRegion(r *rand.Rand, d *division) string {
	if bern(r, 0.7) {
		return d.code
	}
	return pick(r, divisions).code
}

// Marital status values.
const (
	maritalUnmarried = "unmarried"
	maritalMarried   = "married"
	maritalDivorced  = "divorced"
	maritalWidowed   = "widowed"
)

// maritalStatus draws a marital status by age, with divorce slightly more common in weak firms.
func maritalStatus(r *rand.Rand, age, weak float64) string {
	pUnmarried := clamp(0.55-0.018*(age-26), 0.03, 0.55)
	pWidowed := clamp(0.004*(age-45), 0, 0.08)
	pDivorced := clamp(0.07+0.02*weak, 0.02, 0.2)
	u := r.Float64()
	switch {
	case u < pUnmarried:
		return maritalUnmarried
	case u < pUnmarried+pWidowed:
		return maritalWidowed
	case u < pUnmarried+pWidowed+pDivorced:
		return maritalDivorced
	default:
		return maritalMarried
	}
}
