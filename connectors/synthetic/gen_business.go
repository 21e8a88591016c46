package synthetic

import (
	"fmt"
	"math"
	"math/rand/v2"

	"insitu/connectors/ident"
)

// The market regulator's registry (categories 1 and 2), the tax bureau (3), the courts (4), customs
// (5) and the environment bureau (6).

func (w *world) drawRegistry(r *rand.Rand, e *enterprise) {
	row := e.row("market_regulator")
	row.set("enterprise_name", e.name)
	row.set("registration_date", date(e.regDate))
	row.set("industry", e.ind.key)

	row.set("legal_rep_name", e.rep.name)
	changes := poisson(r, math.Exp(-1.9+0.7*e.weak))
	since := e.regDate
	switch {
	case changes > 0:
		since = daysBefore(r, w.asOf, 0, min(1095, int(e.ageYears*365)))
	case e.ageYears > 4 && bern(r, 0.15):
		since = dateBetween(r, e.regDate, w.asOf.AddDate(-3, 0, 0))
	}
	row.set("legal_rep_since", date(since))
	row.set("legal_rep_changes_36m", integer(changes))

	count := 1 + poisson(r, 0.5+0.5*math.Max(0, e.zSize))
	persons := count
	kind := "natural_person"
	name, id := e.rep.name, e.rep.id
	repHolds := true
	switch u := r.Float64(); {
	case u < 0.72:
	case u < 0.9:
		female := bern(r, 0.35)
		birth := daysBefore(r, w.asOf, 26*365, 70*365)
		name, id = personName(r, female), ident.NewResidentID(r, pickRegion(r, e.div), birth, female)
		repHolds = count > 1 && bern(r, 0.6)
	case u < 0.98:
		d := pick(r, divisions)
		kind, name, id = "enterprise", d.short+tradeName(r)+"投资控股有限公司", ident.NewUSCC(r, d.code)
		persons = count - 1
		repHolds = count > 1 && bern(r, 0.4)
	default:
		kind, name, id = "other_organisation", e.div.city+e.div.district+pick(r, []string{"集体资产经营管理中心", "股份经济合作社"}), ident.NewUSCC(r, e.div.code)
		persons = count - 1
		repHolds = count > 1 && bern(r, 0.4)
	}
	ratio := 1.0
	if count > 1 {
		ratio = math.Round(clamp(1/float64(count)+(1-1/float64(count))*r.Float64()*0.8, 0.2, 0.99)*1000) / 1000
	}
	row.set("legal_rep_is_shareholder", boolean(repHolds))
	row.set("shareholder_name", name)
	row.set("shareholder_id", id)
	row.set("shareholder_type", kind)
	row.set("shareholder_count", integer(count))
	row.set("natural_person_shareholders", integer(persons))
	row.set("largest_shareholder_ratio", decimal(ratio, 3))
	row.set("subscribed_capital", money(e.capital))

	// Most small firms pay their subscribed capital in late or never; weak firms less.
	paidShare := 0.0
	if chance(r, -0.3, -0.45, e.weak) {
		paidShare = clamp(sigmoid(0.8-0.5*e.weak+r.NormFloat64()), 0.05, 1)
		if paidShare > 0.85 {
			paidShare = 1
		}
	}
	row.set("paid_in_capital", money(round2(math.Round(e.capital*paidShare/1000)*1000)))
	due := e.regDate.AddDate(5+r.IntN(16), 0, 0)
	if paidShare == 1 {
		due = dateBetween(r, e.regDate, e.regDate.AddDate(1, 0, 0))
		if due.After(w.asOf) {
			due = w.asOf
		}
	}
	row.set("contribution_date", date(due))
	row.set("shareholder_changes_36m", integer(poisson(r, math.Exp(-1.7+0.35*e.weak+0.2*e.zSize))))
}

func (w *world) drawTax(r *rand.Rand, e *enterprise) {
	if !bern(r, 0.97) {
		return
	}
	row := e.row("tax_bureau")
	row.set("enterprise_name", e.name)
	wk := e.weak

	// Deferral: at most three months each, approved for firms in temporary difficulty.
	deferrals := 0
	if chance(r, -3.3, 0.6, wk) {
		deferrals = 1 + poisson(r, 0.3)
		start := daysBefore(r, w.asOf, 0, 700)
		end := start.AddDate(0, 1+r.IntN(3), 0)
		row.set("deferred_amount_24m", money(round2(float64(deferrals)*logNormal(r, math.Log(e.revenue*0.01), 0.8))))
		row.set("latest_deferral_start", date(start))
		row.set("latest_deferral_end", date(end))
		row.set("deferral_outstanding", boolean(end.After(w.asOf)))
	} else {
		row.set("deferred_amount_24m", money(0))
		row.set("deferral_outstanding", boolean(false))
	}
	row.set("deferrals_24m", integer(deferrals))

	// Arrears: zero-inflated, more frequent and larger the weaker the firm.
	arrears, amount, outstanding := 0, 0.0, 0.0
	if chance(r, -1.5, 1.6, wk) {
		arrears = 1 + poisson(r, math.Exp(-0.3+0.35*wk))
		scale := math.Log(e.revenue*0.004) + 0.3*wk
		for range arrears {
			amount += logNormal(r, scale, 1.1)
		}
		amount = round2(amount)
		if chance(r, -0.8, 0.8, wk) {
			outstanding = round2(amount * (0.2 + 0.8*r.Float64()))
		}
		row.set("latest_arrears_date", date(daysBefore(r, w.asOf, 0, 729)))
		row.set("max_arrears_days_24m", integer(max(1, int(logNormal(r, math.Log(20)+0.4*wk, 0.9)))))
	} else {
		row.set("max_arrears_days_24m", integer(0))
	}
	row.set("arrears_count_24m", integer(arrears))
	row.set("arrears_amount_24m", money(amount))
	row.set("arrears_outstanding", boolean(outstanding > 0))
	row.set("outstanding_arrears_amount", money(outstanding))

	grade := "M" // newly established taxpayers
	if e.ageYears >= 1 {
		g := -0.8*wk + 0.25*e.zSize + 0.7*r.NormFloat64() - 0.6*float64(min(arrears, 3)) - 1.5*b2f(outstanding > 0)
		switch {
		case g > 0.9:
			grade = "A"
		case g > -0.8:
			grade = "B"
		case g > -2.2:
			grade = "C"
		default:
			grade = "D"
		}
	}
	row.set("tax_credit_grade", grade)

	// The latest annual filing; young or struggling firms sometimes have none.
	if e.ageYears < 0.6 || chance(r, -3.1, 0.5, wk) {
		return
	}
	row.set("filing_year", integer(w.asOf.Year()-1))
	row.set("revenue", money(e.revenue))
	assets := round2(e.revenue * logNormal(r, math.Log(0.9), 0.5))
	liabilities := round2(assets * clamp(sigmoid(0.1+0.5*wk+0.6*r.NormFloat64()), 0.02, 1.6))
	if bern(r, 0.03) {
		row.set("total_assets", "") // incomplete balance sheet
	} else {
		row.set("total_assets", money(assets))
		row.set("total_liabilities", money(liabilities))
	}
	profit := round2(e.revenue * (0.05 - 0.05*wk + 0.06*r.NormFloat64()))
	row.set("net_profit", money(profit))
	row.set("taxes_paid", money(round2(e.revenue*0.03*logNormal(r, 0, 0.3)+math.Max(0, profit)*0.2)))
	standard := "small_enterprise"
	if e.revenue > 5e7 && bern(r, 0.7) || bern(r, 0.04) {
		standard = "enterprise"
	}
	row.set("accounting_standard", standard)
	row.set("filed_on_time", boolean(chance(r, 2.2, -1.2, wk)))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// drawCourt writes the enterprises on the dishonest judgment debtors list now or in the last 36
// months: the list names debtors only.
func (w *world) drawCourt(r *rand.Rand, e *enterprise) {
	if !chance(r, -4.3, 1.35, e.weak) {
		return
	}
	row := e.row("court")
	row.set("enterprise_name", e.name)
	listed := chance(r, 0.6, 0.6, e.weak)
	cases, removed := 0, 0
	first := daysBefore(r, w.asOf, 30, 1095)
	latest := first
	if listed {
		cases = 1 + poisson(r, math.Exp(-0.8+0.3*e.weak))
		removed = poisson(r, 0.3)
		latest = dateBetween(r, first, w.asOf)
		row.set("amount_outstanding", money(round2(float64(cases)*logNormal(r, math.Log(float64(e.employees)*15000)+0.3*e.weak, 1.1))))
	} else {
		removed = 1 + poisson(r, 0.3)
		row.set("amount_outstanding", money(0))
	}
	row.set("is_listed", boolean(listed))
	row.set("case_count", integer(cases))
	row.set("first_listed_date", date(first))
	row.set("latest_listed_date", date(latest))
	row.set("cases_removed_36m", integer(removed))
	row.set("consumption_restricted", boolean(listed && bern(r, 0.9)))
}

var customsCredit = []string{"advanced_certified", "general", "dishonest"}

func (w *world) drawCustoms(r *rand.Rand, e *enterprise) {
	p := e.ind.exporter
	if !chance(r, math.Log(p/(1-p))+0.6*e.zSize, -0.25, e.weak) {
		return
	}
	row := e.row("customs")
	row.set("enterprise_name", e.name)
	row.set("customs_registered", boolean(true))
	row.set("customs_registration_date", date(dateBetween(r, e.regDate, w.asOf)))
	role := "consignee_consignor"
	switch u := r.Float64(); {
	case e.ind.key == "transport" && u < 0.6:
		role = "declaration_agent"
	case u < 0.1:
		role = "both"
	}
	row.set("customs_role", role)
	credit := customsCredit[1]
	switch {
	case chance(r, -3.5+0.8*e.zSize, -0.6, e.weak):
		credit = customsCredit[0]
	case chance(r, -5.5, 1.2, e.weak):
		credit = customsCredit[2]
	}
	row.set("customs_credit_grade", credit)

	active := chance(r, 1.8, -0.4, e.weak) // some registered traders did not trade this year
	declarations, imports, exports, duties, payments := 0, 0.0, 0.0, 0.0, 0
	if active {
		declarations = 1 + poisson(r, math.Exp(2.3+0.7*e.zSize-0.15*e.weak+0.5*r.NormFloat64()))
		trade := e.revenue * 0.4 * logNormal(r, 0, 0.9)
		share := r.Float64()
		exports, imports = round2(trade*share), round2(trade*(1-share))
		duties = round2(imports * 0.06 * logNormal(r, 0, 0.4))
		payments = int(math.Round(float64(declarations) * (1 - share) * 0.8))
		row.set("trading_countries_12m", integer(1+poisson(r, math.Log1p(float64(declarations)))))
		row.set("latest_payment_date", date(daysBefore(r, w.asOf, 0, 120)))
	} else {
		row.set("trading_countries_12m", integer(0))
	}
	row.set("declarations_12m", integer(declarations))
	row.set("import_value_12m", money(imports))
	row.set("export_value_12m", money(exports))
	row.set("duties_paid_12m", money(duties))
	row.set("duty_payments_12m", integer(payments))
	overdue, charges := 0, 0.0
	if chance(r, -3.0, 0.8, e.weak) {
		overdue = 1 + poisson(r, 0.5)
		charges = round2(float64(overdue) * logNormal(r, math.Log(2000), 1.0))
	}
	row.set("overdue_payments_24m", integer(overdue))
	row.set("late_payment_charges_24m", money(charges))
	row.set("duty_arrears_outstanding", boolean(overdue > 0 && chance(r, -1.0, 0.8, e.weak)))
}

var envGrades = []string{"honest", "good", "warning", "dishonest"}

func (w *world) drawEnvironment(r *rand.Rand, e *enterprise) {
	p := e.ind.polluter
	if p == 0 {
		return
	}
	logit := math.Log(p/(1-p)) + 0.8*e.zSize
	carbon := bern(r, sigmoid(logit-1.5))
	eia := bern(r, sigmoid(logit))
	if !carbon && !eia {
		return
	}
	row := e.row("ecology_environment_bureau")
	row.set("enterprise_name", e.name)
	if carbon {
		emissions := math.Round(logNormal(r, math.Log(float64(e.employees)*30), 1.0))
		row.set("reporting_year", integer(w.asOf.Year()-1))
		row.set("emissions", decimal(emissions, 0))
		row.set("emission_intensity", decimal(emissions/(e.revenue/10000), 4))
		row.set("energy_consumption", decimal(math.Round(emissions/2.6), 0))
		key := emissions >= 26000
		row.set("key_emitter", boolean(key))
		if key {
			row.set("allowance_balance", decimal(math.Round(emissions*(0.03*r.NormFloat64()-0.01*e.weak)), 0))
			row.set("compliance_completed", boolean(chance(r, 3.0, -1.0, e.weak)))
		}
	}
	if eia {
		penalties := poisson(r, math.Exp(-2.0+0.5*e.weak))
		violations := poisson(r, math.Exp(-3.0+0.5*e.weak))
		grade := envGrades[1]
		switch s := 0.5*e.weak + 0.8*float64(penalties+violations) + r.NormFloat64(); {
		case s < -0.6:
			grade = envGrades[0]
		case s < 1.4:
		case s < 2.7:
			grade = envGrades[2]
		default:
			grade = envGrades[3]
		}
		row.set("environmental_credit_grade", grade)
		row.set("grade_date", fmt.Sprintf("%d-12-31", w.asOf.Year()-1))
		row.set("eia_approvals_36m", integer(poisson(r, math.Exp(-0.5+0.4*e.zSize))))
		row.set("eia_violations_36m", integer(violations))
		row.set("environmental_penalties_36m", integer(penalties))
		fine := 0.0
		for range penalties {
			fine += math.Round(logNormal(r, math.Log(50000), 0.8)/1000) * 1000
		}
		row.set("penalty_amount_36m", money(fine))
	}
}
