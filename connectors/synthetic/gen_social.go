package synthetic

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Social and medical insurance (categories 7 and 15), intellectual property (8), the owner's real
// estate (9), R&D (10) and the legal representative's marital status (17).

func (w *world) drawSocial(r *rand.Rand, e *enterprise) {
	// Very young firms are often not yet registered for pension insurance.
	if !bern(r, 0.94-0.25*sigmoid(-3*e.zAge-2.5)) {
		return
	}
	row := e.row("social_insurance_bureau")
	row.set("enterprise_name", e.name)
	row.set("insured_headcount", integer(e.insured))
	row.set("monthly_contribution_base", money(float64(e.insured)*e.base))
	before := max(0, int(math.Round(float64(e.insured)/(1+e.growth))))
	row.set("headcount_change_12m", integer(e.insured-before))
	first := dateBetween(r, e.regDate, e.regDate.AddDate(0, 6, 0))
	if first.After(w.asOf) {
		first = w.asOf
	}
	row.set("first_contribution_date", date(first))
	months, amount := 0, 0.0
	if chance(r, -1.7, 1.6, e.weak) {
		months = 1 + poisson(r, math.Exp(0.3+0.35*e.weak))
		amount = round2(float64(months) * float64(e.insured) * e.base * 0.16 * (0.3 + 0.7*r.Float64()))
	}
	row.set("arrears_months", integer(months))
	row.set("arrears_amount", money(amount))
	paid := 12 - min(12, months)
	if e.ageYears < 1 {
		paid = min(paid, int(e.ageYears*12))
	}
	row.set("months_paid_12m", integer(paid))
	e.pensionArrears = months
}

func (w *world) drawMedical(r *rand.Rand, e *enterprise) {
	healthcare := e.ind.key == "healthcare"
	if !bern(r, 0.91) && !healthcare {
		return
	}
	row := e.row("medical_insurance_bureau")
	row.set("enterprise_name", e.name)
	insured := max(1, e.insured+int(math.Round(0.03*float64(e.insured)*r.NormFloat64())))
	row.set("insured_headcount", integer(insured))
	reg := dateBetween(r, e.regDate, e.regDate.AddDate(0, 8, 0))
	if reg.After(w.asOf) {
		reg = w.asOf
	}
	row.set("registration_date", date(reg))
	row.set("monthly_contribution_base", money(float64(insured)*e.base))

	months, episodes := 0, 0
	if (e.pensionArrears > 0 && bern(r, 0.7)) || chance(r, -4.2, 0.8, e.weak) {
		months = 1 + poisson(r, math.Exp(0.2+0.3*e.weak))
		episodes = 1 + poisson(r, math.Exp(-0.7+0.3*e.weak))
	} else if chance(r, -3.5, 0.7, e.weak) {
		episodes = 1 // an episode in the last 24 months, settled since
	}
	status := "normal"
	if months >= 3 && chance(r, -1.5, 0.6, e.weak) {
		status = "suspended"
	} else if chance(r, -6.0, 1.0, e.weak) {
		status = "terminated"
	}
	row.set("contribution_status", status)
	paid := 12 - min(12, months)
	if e.ageYears < 1 {
		paid = min(paid, int(e.ageYears*12))
	}
	row.set("months_paid_12m", integer(paid))
	row.set("arrears_outstanding", boolean(months > 0))
	row.set("arrears_amount", money(round2(float64(months)*float64(insured)*e.base*0.08*(0.3+0.7*r.Float64()))))
	row.set("arrears_months", integer(months))
	row.set("arrears_episodes_24m", integer(episodes))
	if episodes > 0 {
		row.set("latest_arrears_date", date(daysBefore(r, w.asOf, 0, 729)))
	}

	turnover := 0.15 + 0.05*math.Max(0, e.weak)
	added := poisson(r, float64(insured)*(turnover+math.Max(0, e.growth)))
	removed := poisson(r, float64(insured)*(turnover+math.Max(0, -e.growth)))
	row.set("additions_12m", integer(added))
	row.set("removals_12m", integer(removed))
	row.set("base_adjustments_12m", integer(min(1, int(e.ageYears))+poisson(r, 0.2)))
	if added+removed > 0 {
		row.set("latest_change_date", date(daysBefore(r, w.asOf, 0, min(364, int(e.ageYears*365)))))
	}

	// Designation for medical insurance (category 15): medical institutions and pharmacies only.
	institution, pharmacy, _ := medicalKind(e.word)
	designated := healthcare && (institution || pharmacy) && chance(r, 0.6+0.4*e.zAge, -0.4, e.weak)
	row.set("is_designated", boolean(designated))
	if !designated {
		return
	}
	since := dateBetween(r, e.regDate.AddDate(1, 0, 0), w.asOf)
	if since.After(w.asOf) {
		since = w.asOf
	}
	row.set("designated_since", date(since))
	settlements := round2(math.Round(logNormal(r, math.Log(float64(e.employees)*60000), 0.8)))
	violations := poisson(r, math.Exp(-2.0+0.6*e.weak))
	if institution {
		row.set("clinic_licence", e.practiceNo)
		row.set("clinic_designated_since", date(since))
		row.set("clinic_settlements_12m", money(settlements))
		row.set("clinic_violations_24m", integer(violations))
	} else {
		row.set("drug_licence", fmt.Sprintf("%sAA%07d", provinceAbbrev(e.div), r.IntN(10000000)))
		row.set("pharmacy_designated_since", date(since))
		row.set("pharmacy_settlements_12m", money(settlements))
		row.set("pharmacy_violations_24m", integer(violations))
	}
}

func (w *world) drawIP(r *rand.Rand, e *enterprise) {
	tech := 0.0
	switch e.ind.key {
	case "software_it", "manufacturing", "healthcare":
		tech = 1.3
	}
	if !chance(r, -4.2+tech+0.5*e.zSize, 0.25, e.weak) {
		return
	}
	row := e.row("ip_office")
	row.set("enterprise_name", e.name)
	pledges := 1 + poisson(r, 0.4)
	patents := poisson(r, 1.5*float64(pledges))
	trademarks := poisson(r, 0.4*float64(pledges))
	if patents+trademarks == 0 {
		patents = 1
	}
	row.set("pledge_count", integer(pledges))
	row.set("active_pledges", integer(min(pledges, poisson(r, 0.8*float64(pledges))+1)))
	row.set("pledged_patents", integer(patents))
	row.set("pledged_trademarks", integer(trademarks))
	row.set("pledged_amount", money(math.Round(float64(pledges)*logNormal(r, math.Log(float64(e.employees)*40000), 0.9)/10000)*10000))
	row.set("latest_pledge_date", date(daysBefore(r, w.asOf, 0, 1095)))
}

// drawEstate writes the natural resources bureau's answers about the owner (the legal
// representative): properties, mortgages and, for farmers, rural housing.
func (w *world) drawEstate(r *rand.Rand, e *enterprise) {
	if !bern(r, 0.87) {
		return
	}
	row := e.row("natural_resources_bureau")
	row.set("owner_resident_id", e.rep.id)
	props := poisson(r, math.Exp(0.1+0.3*e.zSize+0.15*e.zAge-0.45*e.weak))
	row.set("owns_property", boolean(props > 0))
	row.set("property_count", integer(props))
	mortgages, mortgaged := 0, 0
	if props > 0 {
		row.set("total_area", decimal(round2(float64(props)*logNormal(r, math.Log(110), 0.45)), 2))
		row.set("residential_count", integer(max(1, props-poisson(r, 0.3*float64(props)))))
		adult := e.rep.birth.AddDate(22, 0, 0)
		row.set("earliest_registration_date", date(dateBetween(r, adult, w.asOf)))
		row.set("under_seizure", boolean(chance(r, -4.6, 1.2, e.weak)))
		mortgaged = min(props, poisson(r, math.Exp(-0.7+0.35*e.weak+0.2*e.zSize)))
		if mortgaged > 0 {
			mortgages = mortgaged + poisson(r, 0.2)
			row.set("mortgage_amount", money(math.Round(float64(mortgages)*logNormal(r, math.Log(900000), 0.7)/1000)*1000))
			row.set("latest_mortgage_date", date(daysBefore(r, w.asOf, 0, 2500)))
			row.set("maximum_amount_mortgage", boolean(bern(r, 0.35)))
		} else {
			row.set("mortgage_amount", money(0))
			row.set("maximum_amount_mortgage", boolean(false))
		}
	} else {
		row.set("total_area", decimal(0, 2))
		row.set("residential_count", integer(0))
		row.set("under_seizure", boolean(false))
		row.set("mortgage_amount", money(0))
		row.set("maximum_amount_mortgage", boolean(false))
	}
	row.set("mortgage_count", integer(mortgages))
	row.set("mortgaged_properties", integer(mortgaged))

	if e.ind.key == "agriculture" {
		row.set("farmer_resident_id", e.rep.id)
		has := bern(r, 0.75)
		row.set("has_registered_housing", boolean(has))
		if has {
			row.set("homestead_area", decimal(round2(logNormal(r, math.Log(120), 0.3)), 2))
			row.set("floor_area", decimal(round2(logNormal(r, math.Log(220), 0.35)), 2))
			row.set("housing_registration_date", date(daysBefore(r, w.asOf, 200, 3000)))
			row.set("housing_mortgaged", boolean(chance(r, -2.0, 0.5, e.weak)))
		}
	}
}

var specialisedLevels = []string{"none", "specialised_sme", "little_giant"}

func (w *world) drawScience(r *rand.Rand, e *enterprise) {
	base := -3.6
	switch e.ind.key {
	case "software_it":
		base = -0.2
	case "manufacturing", "healthcare":
		base = -1.2
	}
	if !chance(r, base+0.4*e.zSize, -0.3, e.weak) {
		return
	}
	row := e.row("science_bureau")
	row.set("enterprise_name", e.name)
	score := math.Round(clamp(62+8*e.zSize-5*e.weak+10*r.NormFloat64(), 10, 100)*10) / 10
	row.set("innovation_score", decimal(score, 1))
	row.set("high_tech_enterprise", boolean(score > 70 && bern(r, 0.7)))
	row.set("tech_sme", boolean(e.employees < 500 && score > 50))
	level := specialisedLevels[0]
	if score > 75 && bern(r, 0.3) {
		level = specialisedLevels[1]
		if score > 88 && e.employees > 50 && bern(r, 0.3) {
			level = specialisedLevels[2]
		}
	}
	row.set("specialised_level", level)
	if bern(r, 0.92) {
		row.set("rd_intensity", decimal(clamp(0.04+0.03*r.NormFloat64()+0.0008*(score-62), 0, 0.6), 4))
	}
	row.set("rd_staff_ratio", decimal(clamp(0.12+0.08*r.NormFloat64()+0.002*(score-62), 0, 0.9), 4))
	row.set("patents_granted", integer(poisson(r, math.Exp(0.8+0.5*e.zSize+0.02*(score-62)))))
	row.set("evaluation_date", date(daysBefore(r, w.asOf, 0, 540)))
}

// drawCivil writes the civil affairs bureau's answer to a marital-status check of the legal
// representative.
func (w *world) drawCivil(r *rand.Rand, e *enterprise) {
	if !bern(r, 0.85) {
		return
	}
	row := e.row("civil_affairs_bureau")
	row.set("legal_rep_name", e.rep.name)
	row.set("resident_id", e.rep.id)
	row.set("marital_status", e.marital)
	if e.marital != maritalUnmarried {
		adult := e.rep.birth.AddDate(22, 0, 0)
		row.set("status_since", date(dateBetween(r, adult, w.asOf.Add(-24*time.Hour))))
	}
}
