package synthetic

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Agricultural operators and lists (categories 11 and 12), public resource trading (13), licences
// (14) and utilities (16).

var (
	farmingTypes   = []string{"grain", "cash_crops", "vegetables", "fruit", "tea", "livestock", "poultry", "aquaculture", "mixed"}
	farmingWeights = []float64{0.3, 0.08, 0.14, 0.1, 0.06, 0.12, 0.07, 0.06, 0.07}
	subsidyTypes   = []string{"farmland_protection", "grain_production", "machinery_purchase", "seeds", "livestock", "insurance_premium", "other"}
	demoLevels     = []string{"none", "county", "city", "province", "national"}
)

// insuranceType returns the agricultural insurance type that fits a farming type.
func insuranceType(farming string) string {
	switch farming {
	case "livestock", "poultry":
		return "livestock"
	case "aquaculture":
		return "aquaculture"
	}
	return "crop"
}

// mainCrop returns the large-grower list's crop category of a farming type.
func mainCrop(farming string) string {
	switch farming {
	case "grain":
		return "grain"
	case "cash_crops":
		return "oil_crops"
	case "vegetables", "fruit", "tea":
		return farming
	}
	return "other"
}

func (w *world) drawAgriculture(r *rand.Rand, e *enterprise) {
	if e.ind.key != "agriculture" || !bern(r, 0.92) {
		return
	}
	row := e.row("agriculture_bureau")
	row.set("farm_owner_name", e.rep.name)
	row.set("id_type", "resident_id_card")
	row.set("id_number", e.rep.id)
	row.set("registered_date", date(dateBetween(r, e.regDate, w.asOf)))
	level := 0
	if chance(r, -1.5+0.6*e.zSize, -0.5, e.weak) {
		level = 1 + min(3, poisson(r, 0.5))
	}
	row.set("demonstration_level", demoLevels[level])
	row.set("family_labour", integer(1+poisson(r, 1.5)))
	row.set("hired_workers", integer(max(0, e.employees-2)))

	farming := farmingTypes[pickWeighted(r, len(farmingTypes), func(i int) float64 { return farmingWeights[i] })]
	unit, perUnit := "mu", 2500.0
	scale := math.Round(logNormal(r, math.Log(float64(e.employees)*25), 0.7))
	switch farming {
	case "livestock":
		unit, perUnit, scale = "head", 3000, math.Round(scale*2)
	case "poultry":
		unit, perUnit, scale = "head", 60, math.Round(scale*80)
	}
	row.set("farm_name", e.rep.name+"家庭农场")
	row.set("farming_type", farming)
	row.set("farming_scale", decimal(scale, 0))
	row.set("scale_unit", unit)
	row.set("annual_output_value", money(round2(scale*perUnit*logNormal(r, -0.1*e.weak, 0.35))))
	row.set("years_operating", integer(int(e.ageYears)))

	if unit == "mu" && bern(r, 0.8) {
		contracts := 1 + poisson(r, 1.0)
		total := math.Round(scale * clamp(0.5+0.5*r.Float64(), 0, 1))
		largest := math.Round(total * clamp(1/float64(contracts)+0.3*r.Float64(), 0, 1))
		start := dateBetween(r, e.regDate.AddDate(0, -6, 0), w.asOf)
		row.set("transferee", e.rep.name+"家庭农场")
		row.set("land_area", decimal(largest, 0))
		row.set("transfer_fee", money(round2(largest*logNormal(r, math.Log(800), 0.3))))
		row.set("parcel_code", parcelCode(r, e.div))
		row.set("contract_start", date(start))
		row.set("contract_end", date(start.AddDate(5+r.IntN(11), 0, 0)))
		row.set("contracts_in_force", integer(contracts))
		row.set("total_transferred_area", decimal(total, 0))
	}

	insured := chance(r, 0.9, -0.4, e.weak)
	row.set("insured", boolean(insured))
	if insured {
		iscale := math.Round(scale * clamp(0.5+0.5*r.Float64(), 0, 1))
		sum := round2(iscale * perUnit * 0.4)
		claims := poisson(r, math.Exp(-1.2+0.3*e.weak))
		row.set("insurance_type", insuranceType(farming))
		row.set("insured_scale", decimal(iscale, 0))
		row.set("insured_amount", money(sum))
		row.set("policy_valid_until", date(w.asOf.AddDate(0, 0, -60+r.IntN(365))))
		row.set("claims", integer(claims))
		paidClaims := 0.0
		for range claims {
			paidClaims += sum * 0.15 * r.Float64()
		}
		row.set("claims_paid_amount", money(round2(paidClaims)))
	}
	if bern(r, 0.7) {
		row.set("subsidy_type", subsidyTypes[r.IntN(len(subsidyTypes))])
		row.set("subsidy_amount", money(round2(math.Round(scale*logNormal(r, math.Log(100), 0.5)))))
		row.set("subsidy_year", integer(w.asOf.Year()-1))
		row.set("subsidies_36m", integer(1+poisson(r, 1.2)))
	} else {
		row.set("subsidies_36m", integer(0))
	}

	// The large-grower list (category 12) covers crop farms above about 100 mu.
	if unit == "mu" && farming != "aquaculture" {
		on := scale >= 100 && bern(r, 0.85)
		row.set("on_list", boolean(on))
		if on {
			row.set("listed_year", integer(w.asOf.Year()-r.IntN(3)))
			row.set("planted_area", decimal(scale, 0))
			row.set("main_crop", mainCrop(farming))
		}
	}
}

var tradeTypes = []string{"construction", "government_procurement", "land_use_rights", "mining_rights", "state_assets", "other"}

func (w *world) drawTrading(r *rand.Rand, e *enterprise) {
	base := -4.0
	switch e.ind.key {
	case "construction":
		base = -0.3
	case "software_it", "business_services", "healthcare":
		base = -2.8
	}
	if !chance(r, base+0.7*e.zSize, -0.45, e.weak) {
		return
	}
	row := e.row("public_resource_trading_centre")
	row.set("enterprise_name", e.name)
	kind := tradeTypes[pickWeighted(r, 6, func(i int) float64 { return []float64{0.1, 0.8, 0.03, 0.01, 0.03, 0.03}[i] })]
	if e.ind.key == "construction" {
		kind = tradeTypes[0]
	}
	awards := 1 + poisson(r, math.Exp(0.2+0.5*e.zSize-0.2*e.weak))
	amount := math.Round(logNormal(r, math.Log(float64(e.employees)*60000), 1.0)/100) * 100
	total := amount
	for range awards - 1 {
		total += math.Round(logNormal(r, math.Log(float64(e.employees)*60000), 1.0)/100) * 100
	}
	announced := daysBefore(r, w.asOf, 0, 729)
	row.set("trade_type", kind)
	row.set("project_name", e.div.district+pick(r, []string{"道路改造", "学校扩建", "办公设备采购", "信息化建设", "绿化养护", "污水管网", "物业服务"})+"项目")
	row.set("project_amount", money(amount))
	row.set("project_owner", e.div.city+e.div.district+pick(r, []string{"住房和城乡建设局", "教育局", "交通运输局", "城市管理局", "卫生健康局"}))
	row.set("link", fmt.Sprintf("https://ggzy.example.gov.cn/%s/%s/%06d.html", e.div.code, announced.Format("200601"), r.IntN(1000000)))
	row.set("announcement_date", date(announced))
	row.set("awards_24m", integer(awards))
	row.set("award_amount_24m", money(total))
}

// licenceDates draws a licence's issue date and expiry: five-year terms, renewed unless the firm
// struggles.
func (w *world) licenceDates(r *rand.Rand, e *enterprise) (issued, until time.Time) {
	issued = dateBetween(r, e.regDate, w.asOf)
	until = issued.AddDate(5, 0, 0)
	for until.Before(w.asOf) && !chance(r, -2.5, 0.8, e.weak) {
		issued, until = until, until.AddDate(5, 0, 0)
	}
	return issued, until
}

var (
	licenceSeries  = []string{"general_contracting", "specialised_contracting", "labour_services"}
	licenceClasses = []string{"building", "municipal", "highway", "water_conservancy", "electric_power", "mechanical_electrical", "foundation", "decoration"}
	licenceGrades  = []string{"grade_3", "grade_2", "grade_1", "special"}
)

func (w *world) drawLicences(r *rand.Rand, e *enterprise) {
	switch e.ind.key {
	case "construction":
		if !bern(r, 0.92) {
			return
		}
		row := e.row("housing_construction_bureau")
		row.set("enterprise_name", e.name)
		issued, until := w.licenceDates(r, e)
		grade := min(3, max(0, int(math.Floor(0.8+0.6*e.zSize+0.5*r.NormFloat64()))))
		row.set("licence_series", licenceSeries[pickWeighted(r, 3, func(i int) float64 { return []float64{0.45, 0.45, 0.1}[i] })])
		row.set("licence_class", pick(r, licenceClasses))
		row.set("licence_grade", licenceGrades[grade])
		issuer := e.div.city + "住房和城乡建设局"
		if grade >= 2 {
			issuer = e.div.province + "住房和城乡建设厅"
		}
		row.set("issuer", issuer)
		row.set("issue_date", date(issued))
		row.set("valid_until", date(until))
		row.set("licence_count", integer(1+poisson(r, math.Exp(-0.5+0.4*e.zSize))))
	case "healthcare":
		institution, _, kind := medicalKind(e.word)
		if !institution || !bern(r, 0.95) {
			return
		}
		row := e.row("health_commission")
		row.set("enterprise_name", e.name)
		_, until := w.licenceDates(r, e)
		row.set("practice_licence_no", e.practiceNo)
		row.set("issuer", e.div.city+e.div.district+"卫生健康局")
		row.set("valid_until", date(until))
		row.set("institution_type", kind)
		beds := 0
		if kind == "hospital" {
			beds = 20 + poisson(r, float64(e.employees))
		}
		row.set("beds", integer(beds))
	case "education":
		if !bern(r, 0.85) {
			return
		}
		row := e.row("education_bureau")
		row.set("enterprise_name", e.name)
		_, until := w.licenceDates(r, e)
		row.set("school_licence_no", fmt.Sprintf("教民%s%09d号", e.div.code, r.IntN(1000000000)))
		row.set("admin_licence_no", fmt.Sprintf("%s教许%s%06d", provinceAbbrev(e.div), e.div.code[:4], r.IntN(1000000)))
		training := pick(r, []string{"non_academic", "vocational_skills", "academic_tutoring"})
		row.set("school_type", "none")
		row.set("training_org_type", training)
		switch training {
		case "non_academic":
			row.set("training_content", pick(r, []string{"艺术培训", "体育培训", "科技培训"}))
		case "vocational_skills":
			row.set("training_content", pick(r, []string{"电工技能培训", "育婴员培训", "计算机操作员培训"}))
		default:
			row.set("training_content", "学科类校外培训")
		}
		row.set("authority", e.div.city+e.div.district+"教育局")
		row.set("valid_until", date(until))
		row.set("penalties", integer(poisson(r, math.Exp(-2.2+0.6*e.weak))))
	case "transport":
		if !bern(r, 0.95) {
			return
		}
		row := e.row("transport_bureau")
		row.set("operator_name", e.name)
		_, until := w.licenceDates(r, e)
		kind := pick(r, []string{"freight", "freight", "freight", "passenger", "dangerous_goods"})
		scope := map[string]string{"freight": "道路普通货物运输", "passenger": "道路旅客运输", "dangerous_goods": "道路危险货物运输"}[kind]
		row.set("road_transport_licence_no", fmt.Sprintf("%s交运管许可%s字%s%06d号", provinceAbbrev(e.div), provinceAbbrev(e.div), e.div.code, r.IntN(1000000)))
		row.set("business_scope", scope)
		row.set("issuer", e.div.city+e.div.district+"交通运输局")
		row.set("valid_until", date(until))
		row.set("transport_type", kind)
		row.set("vehicles", integer(max(1, poisson(r, float64(e.employees)*0.6))))
		row.set("violations_24m", integer(poisson(r, math.Exp(-1.2+0.5*e.weak+0.3*e.zSize))))
	}
}

// drawMetered writes a water or gas account: usage, prepayment, arrears and late payments.
func (w *world) drawMetered(r *rand.Rand, e *enterprise, key string, perEmployee, lateBase float64) {
	row := e.row(key)
	row.set("enterprise_name", e.name)
	opened := dateBetween(r, e.regDate, e.regDate.AddDate(0, 6, 0))
	if opened.After(w.asOf) {
		opened = w.asOf
	}
	row.set("account_open_date", date(opened))
	if !bern(r, 0.03) {
		row.set("address", e.address)
	}
	usage := math.Round(float64(e.employees) * perEmployee * logNormal(r, 0, 0.6))
	row.set("consumption_12m", decimal(usage, 0))
	price := 4.5
	if key == "gas_company" {
		price = 3.8
	}
	if bern(r, 0.9) { // some utilities do not report prepayments
		prepaid := 0.0
		if chance(r, -1.0, -0.5, e.weak) {
			prepaid = math.Round(usage * price / 12 * logNormal(r, 0, 0.5))
		}
		row.set("prepaid_amount", money(prepaid))
	}
	arrears, late := 0.0, 0
	if chance(r, lateBase, 1.2, e.weak) {
		arrears = round2(usage * price / 12 * logNormal(r, 0.3*e.weak, 0.8))
		late = 1 + poisson(r, math.Exp(-0.3+0.4*e.weak))
	} else if chance(r, lateBase+0.5, 0.6, e.weak) {
		late = 1 // paid late, settled since
	}
	row.set("arrears_amount", money(arrears))
	row.set("late_payments_12m", integer(late))
	if !bern(r, 0.05) {
		row.set("one_meter_per_household", boolean(bern(r, 0.82)))
	}
}

var powerStatus = []string{"active", "suspended", "closed"}

func (w *world) drawUtilities(r *rand.Rand, e *enterprise) {
	if bern(r, 0.86) {
		w.drawMetered(r, e, "water_utility", 150, -2.6)
	}
	gasP := 0.3
	switch e.ind.key {
	case "manufacturing", "hospitality":
		gasP = 0.75
	}
	if bern(r, gasP) {
		w.drawMetered(r, e, "gas_company", 200, -2.8)
	}
	if !bern(r, 0.93) {
		return
	}
	row := e.row("power_company")
	row.set("enterprise_name", e.name)
	if !bern(r, 0.02) {
		row.set("address", e.address)
	}
	contract := math.Round(math.Max(10, float64(e.employees)*logNormal(r, math.Log(8), 0.7)))
	row.set("contract_capacity", decimal(contract, 0))
	row.set("running_capacity", decimal(math.Round(contract*clamp(0.6+0.15*r.NormFloat64()-0.06*e.weak, 0.05, 1)), 0))
	first := dateBetween(r, e.regDate, e.regDate.AddDate(0, 3, 0))
	if first.After(w.asOf) {
		first = w.asOf
	}
	row.set("first_supply_date", date(first))
	status := powerStatus[0]
	if chance(r, -5.2, 1.1, e.weak) {
		status = powerStatus[1+r.IntN(2)]
	}
	row.set("account_status", status)
	usage := math.Round(contract * 1500 * logNormal(r, -0.05*e.weak, 0.5))
	row.set("consumption_12m", decimal(usage, 0))
	if w.asOf.Sub(first) > 2*365*24*time.Hour {
		growth := clamp(0.7*e.growth-0.06*e.weak+0.1*r.NormFloat64(), -0.95, 3)
		row.set("consumption_growth_12m", decimal(growth, 4))
	}
	arrears := 0.0
	if chance(r, -2.5, 1.2, e.weak) {
		arrears = round2(usage * 0.7 / 12 * logNormal(r, 0.3*e.weak, 0.9))
	}
	row.set("arrears_amount", money(arrears))
	row.set("defaults_last_2y", integer(poisson(r, math.Exp(-1.2+1.2*e.weak))))
}
