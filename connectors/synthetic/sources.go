package synthetic

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"insitu/connectors"
)

// column is one CSV column of a source and the field it maps to: "<item>.<field>" for a catalog
// field, "custom.<key>" for a field the mapping declares, or "" for a column the mapping leaves out
// (providers send more than the catalog asks for, e.g. the enterprise's name).
type column struct {
	name  string
	field string
}

// sourceDef is one provider's CSV file: its columns after the subject column "uscc", and the custom
// fields its mapping declares.
type sourceDef struct {
	key          string // source and provider key; the CSV is sources/<key>.csv
	providerName string
	columns      []column
	custom       []connectors.CustomField
	index        map[string]int
}

// subjectColumn is the first column of every source: the enterprise's credit code.
const subjectColumn = "uscc"

// cols builds columns from "name=item.field" pairs; a bare "item.field" names the column after the
// field, and "name=" is a column no field maps to.
func cols(specs ...string) []column {
	out := make([]column, 0, len(specs))
	for _, s := range specs {
		name, field := "", s
		for i := 0; i < len(s); i++ {
			if s[i] == '=' {
				name, field = s[:i], s[i+1:]
				break
			}
		}
		if name == "" && field != "" {
			for i := len(field) - 1; i >= 0; i-- {
				if field[i] == '.' {
					name = field[i+1:]
					break
				}
			}
		}
		out = append(out, column{name: name, field: field})
	}
	return out
}

var industryKeys = func() []string {
	k := make([]string, len(industries))
	for i, ind := range industries {
		k[i] = ind.key
	}
	return k
}()

// sourceDefs lists every source in the order Generate writes them.
var sourceDefs = []*sourceDef{
	{key: "market_regulator", providerName: "市场监督管理局", columns: cols(
		"legal_representative.enterprise_name",
		"custom.registration_date", "custom.industry",
		"legal_representative.legal_rep_name", "legal_representative.legal_rep_since",
		"legal_representative.legal_rep_changes_36m", "legal_representative.legal_rep_is_shareholder",
		"shareholders_and_contributions.shareholder_name", "shareholders_and_contributions.shareholder_id",
		"shareholders_and_contributions.shareholder_type", "shareholders_and_contributions.contribution_date",
		"shareholders_and_contributions.shareholder_count", "shareholders_and_contributions.natural_person_shareholders",
		"shareholders_and_contributions.largest_shareholder_ratio", "shareholders_and_contributions.subscribed_capital",
		"shareholders_and_contributions.paid_in_capital", "shareholders_and_contributions.shareholder_changes_36m"),
		custom: []connectors.CustomField{
			{Key: "registration_date", NameZH: "成立日期", NameEN: "Registration date", Type: "date", Sensitivity: 1,
				Description: "Date the enterprise was registered with the market regulator."},
			{Key: "industry", NameZH: "所属行业", NameEN: "Industry", Type: "enum", Values: industryKeys, Sensitivity: 1},
		}},
	{key: "tax_bureau", providerName: "税务局", columns: cols(
		"enterprise_name=",
		"tax_deferral.deferrals_24m", "tax_deferral.deferred_amount_24m", "tax_deferral.deferral_outstanding",
		"tax_deferral.latest_deferral_start", "tax_deferral.latest_deferral_end",
		"tax_arrears_history.arrears_amount_24m", "tax_arrears_history.arrears_count_24m",
		"tax_arrears_history.latest_arrears_date", "tax_arrears_history.arrears_outstanding",
		"tax_arrears_history.outstanding_arrears_amount", "tax_arrears_history.max_arrears_days_24m",
		"tax_arrears_history.tax_credit_grade",
		"financial_filings.filing_year", "financial_filings.revenue", "financial_filings.total_assets",
		"financial_filings.total_liabilities", "financial_filings.net_profit", "financial_filings.taxes_paid",
		"financial_filings.accounting_standard", "financial_filings.filed_on_time")},
	{key: "court", providerName: "人民法院", columns: cols(
		"enterprise_name=",
		"dishonest_judgment_debtors.is_listed", "dishonest_judgment_debtors.case_count",
		"dishonest_judgment_debtors.amount_outstanding", "dishonest_judgment_debtors.first_listed_date",
		"dishonest_judgment_debtors.latest_listed_date", "dishonest_judgment_debtors.cases_removed_36m",
		"dishonest_judgment_debtors.consumption_restricted")},
	{key: "customs", providerName: "海关", columns: cols(
		"enterprise_name=",
		"customs_basic.customs_registered", "customs_basic.customs_registration_date", "customs_basic.customs_role",
		"customs_basic.customs_credit_grade", "customs_basic.import_value_12m", "customs_basic.export_value_12m",
		"customs_basic.declarations_12m", "customs_basic.trading_countries_12m",
		"customs_duty_payments.duties_paid_12m", "customs_duty_payments.duty_payments_12m",
		"customs_duty_payments.overdue_payments_24m", "customs_duty_payments.late_payment_charges_24m",
		"customs_duty_payments.duty_arrears_outstanding", "customs_duty_payments.latest_payment_date")},
	{key: "ecology_environment_bureau", providerName: "生态环境局", columns: cols(
		"enterprise_name=",
		"carbon_emissions.reporting_year", "carbon_emissions.emissions", "carbon_emissions.emission_intensity",
		"carbon_emissions.energy_consumption", "carbon_emissions.key_emitter", "carbon_emissions.allowance_balance",
		"carbon_emissions.compliance_completed",
		"eia_credit.environmental_credit_grade", "eia_credit.grade_date", "eia_credit.eia_approvals_36m",
		"eia_credit.eia_violations_36m", "eia_credit.environmental_penalties_36m", "eia_credit.penalty_amount_36m")},
	{key: "social_insurance_bureau", providerName: "社会保险事业管理中心", columns: cols(
		"enterprise_name=",
		"pension_contributions.insured_headcount", "pension_contributions.months_paid_12m",
		"pension_contributions.monthly_contribution_base", "pension_contributions.arrears_amount",
		"pension_contributions.arrears_months", "pension_contributions.headcount_change_12m",
		"pension_contributions.first_contribution_date")},
	{key: "medical_insurance_bureau", providerName: "医疗保障局", columns: cols(
		"enterprise_name=",
		"medical_insurance_basic.insured_headcount", "medical_insurance_basic.registration_date",
		"medical_insurance_basic.monthly_contribution_base", "medical_insurance_basic.contribution_status",
		"medical_insurance_basic.months_paid_12m",
		"medical_insurance_arrears.arrears_outstanding", "medical_insurance_arrears.arrears_amount",
		"medical_insurance_arrears.arrears_months", "medical_insurance_arrears.arrears_episodes_24m",
		"medical_insurance_arrears.latest_arrears_date",
		"medical_insurance_changes.additions_12m", "medical_insurance_changes.removals_12m",
		"medical_insurance_changes.base_adjustments_12m", "medical_insurance_changes.latest_change_date",
		"designated_unit.is_designated", "designated_unit.designated_since",
		"designated_private_clinic.clinic_licence", "clinic_designated_since=designated_private_clinic.designated_since",
		"clinic_settlements_12m=designated_private_clinic.settlements_12m",
		"clinic_violations_24m=designated_private_clinic.violations_24m",
		"designated_retail_pharmacy.drug_licence", "pharmacy_designated_since=designated_retail_pharmacy.designated_since",
		"pharmacy_settlements_12m=designated_retail_pharmacy.settlements_12m",
		"pharmacy_violations_24m=designated_retail_pharmacy.violations_24m")},
	{key: "ip_office", providerName: "知识产权局", columns: cols(
		"enterprise_name=",
		"patent_trademark_pledges.pledge_count", "patent_trademark_pledges.active_pledges",
		"patent_trademark_pledges.pledged_patents", "patent_trademark_pledges.pledged_trademarks",
		"patent_trademark_pledges.pledged_amount", "patent_trademark_pledges.latest_pledge_date")},
	{key: "natural_resources_bureau", providerName: "自然资源和规划局（不动产登记中心）", columns: cols(
		"owner_real_estate.owner_resident_id", "owner_real_estate.owns_property", "owner_real_estate.property_count",
		"owner_real_estate.total_area", "owner_real_estate.residential_count",
		"owner_real_estate.earliest_registration_date", "owner_real_estate.under_seizure",
		"owner_real_estate_mortgages.mortgage_count", "owner_real_estate_mortgages.mortgaged_properties",
		"owner_real_estate_mortgages.mortgage_amount", "owner_real_estate_mortgages.latest_mortgage_date",
		"owner_real_estate_mortgages.maximum_amount_mortgage",
		"farmer_housing.farmer_resident_id", "farmer_housing.has_registered_housing", "farmer_housing.homestead_area",
		"farmer_housing.floor_area", "housing_registration_date=farmer_housing.registration_date",
		"housing_mortgaged=farmer_housing.mortgaged")},
	{key: "science_bureau", providerName: "科学技术局", columns: cols(
		"enterprise_name=",
		"innovation_evaluation.high_tech_enterprise", "innovation_evaluation.tech_sme",
		"innovation_evaluation.specialised_level", "innovation_evaluation.rd_intensity",
		"innovation_evaluation.rd_staff_ratio", "innovation_evaluation.patents_granted",
		"innovation_evaluation.innovation_score", "innovation_evaluation.evaluation_date")},
	{key: "agriculture_bureau", providerName: "农业农村局", columns: cols(
		"operator_basic.farm_owner_name", "operator_basic.id_type", "operator_basic.id_number",
		"operator_basic.registered_date", "operator_basic.demonstration_level", "operator_basic.family_labour",
		"operator_basic.hired_workers",
		"operations.farm_name", "operations.farming_type", "operations.farming_scale", "operations.scale_unit",
		"operations.annual_output_value", "operations.years_operating",
		"land_rights_transfer.transferee", "land_rights_transfer.transfer_fee", "land_rights_transfer.land_area",
		"land_rights_transfer.parcel_code", "land_rights_transfer.contract_start", "land_rights_transfer.contract_end",
		"land_rights_transfer.contracts_in_force", "land_rights_transfer.total_transferred_area",
		"insurance.insured", "insurance.insurance_type", "insurance.insured_scale", "insurance.insured_amount",
		"insurance.policy_valid_until", "insurance.claims", "insurance.claims_paid_amount",
		"subsidies.subsidy_type", "subsidies.subsidy_amount", "subsidies.subsidy_year", "subsidies.subsidies_36m",
		"large_growers_list.on_list", "large_growers_list.listed_year", "large_growers_list.planted_area",
		"large_growers_list.main_crop")},
	{key: "public_resource_trading_centre", providerName: "公共资源交易中心", columns: cols(
		"public_resource_trading.enterprise_name", "public_resource_trading.trade_type",
		"public_resource_trading.project_name", "public_resource_trading.project_amount",
		"public_resource_trading.project_owner", "public_resource_trading.link",
		"public_resource_trading.announcement_date", "public_resource_trading.awards_24m",
		"public_resource_trading.award_amount_24m")},
	{key: "housing_construction_bureau", providerName: "住房和城乡建设局", columns: cols(
		"construction_licence.enterprise_name", "construction_licence.licence_series",
		"construction_licence.licence_class", "construction_licence.licence_grade", "construction_licence.issuer",
		"construction_licence.issue_date", "construction_licence.valid_until", "construction_licence.licence_count")},
	{key: "health_commission", providerName: "卫生健康委员会", columns: cols(
		"medical_licence.enterprise_name", "medical_licence.practice_licence_no", "medical_licence.issuer",
		"medical_licence.valid_until", "medical_licence.institution_type", "medical_licence.beds")},
	{key: "education_bureau", providerName: "教育局", columns: cols(
		"education_licence.enterprise_name", "education_licence.school_licence_no",
		"education_licence.admin_licence_no", "education_licence.school_type", "education_licence.training_org_type",
		"education_licence.school_content", "education_licence.training_content", "education_licence.authority",
		"education_licence.valid_until", "education_licence.penalties")},
	{key: "transport_bureau", providerName: "交通运输局", columns: cols(
		"transport_licence.operator_name", "transport_licence.road_transport_licence_no",
		"transport_licence.business_scope", "transport_licence.issuer", "transport_licence.valid_until",
		"transport_licence.transport_type", "transport_licence.vehicles", "transport_licence.violations_24m")},
	{key: "water_utility", providerName: "自来水公司", columns: cols(
		"water.enterprise_name", "water.account_open_date", "water.address", "water.prepaid_amount",
		"water.arrears_amount", "water.one_meter_per_household", "water.consumption_12m", "water.late_payments_12m")},
	{key: "power_company", providerName: "供电公司", columns: cols(
		"electricity.enterprise_name", "electricity.address", "electricity.running_capacity",
		"electricity.contract_capacity", "electricity.first_supply_date", "electricity.account_status",
		"electricity.arrears_amount", "electricity.defaults_last_2y", "electricity.consumption_12m",
		"electricity.consumption_growth_12m")},
	{key: "gas_company", providerName: "燃气公司", columns: cols(
		"gas.enterprise_name", "gas.account_open_date", "gas.address", "gas.prepaid_amount", "gas.arrears_amount",
		"gas.one_meter_per_household", "gas.consumption_12m", "gas.late_payments_12m")},
	{key: "civil_affairs_bureau", providerName: "民政局", columns: cols(
		"legal_rep_marital_status.legal_rep_name", "legal_rep_marital_status.resident_id",
		"legal_rep_marital_status.marital_status", "legal_rep_marital_status.status_since")},
}

func init() {
	for _, d := range sourceDefs {
		d.index = make(map[string]int, len(d.columns))
		for i, c := range d.columns {
			if _, dup := d.index[c.name]; dup || c.name == subjectColumn {
				panic(fmt.Sprintf("synthetic: source %s: column %q twice", d.key, c.name))
			}
			d.index[c.name] = i
		}
	}
}

// row is one enterprise's record in one source, filled by the generator and written if present.
type row struct {
	def     *sourceDef
	present bool
	cells   []string
}

func newRows() []row {
	rows := make([]row, len(sourceDefs))
	for i, d := range sourceDefs {
		rows[i] = row{def: d, cells: make([]string, len(d.columns))}
	}
	return rows
}

func (r *row) reset() {
	r.present = false
	clear(r.cells)
}

// set stores the value of a column. It panics on a column the source does not have (programmer
// error).
func (r *row) set(col, v string) {
	i, ok := r.def.index[col]
	if !ok {
		panic(fmt.Sprintf("synthetic: source %s has no column %q", r.def.key, col))
	}
	r.cells[i] = v
}

// Cell formats. Missing values are empty strings: NaN numbers, zero dates.

func money(x float64) string {
	if math.IsNaN(x) {
		return ""
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

func decimal(x float64, places int) string {
	if math.IsNaN(x) {
		return ""
	}
	return strconv.FormatFloat(x, 'f', places, 64)
}

func integer(n int) string { return strconv.Itoa(n) }

func boolean(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.DateOnly)
}
