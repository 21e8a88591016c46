package catalog

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// annexItems is the number of rows (items) of the annex's table.
const annexItems = 37

func TestDefaultParses(t *testing.T) {
	c, err := Parse(embedded)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Categories); got != 17 {
		t.Errorf("%d categories, want 17", got)
	}
	if got := len(c.Items()); got != annexItems {
		t.Errorf("%d items, want %d", got, annexItems)
	}
	if Default() == nil || len(Default().Items()) != annexItems {
		t.Error("Default does not return the embedded catalog")
	}
	for _, it := range c.Items() {
		if it.Category == nil {
			t.Errorf("item %s has no category", it.Key)
		}
		if len(it.Features()) == 0 {
			t.Errorf("item %s has no feature a model can use", it.Key)
		}
		for _, f := range it.Fields {
			if f.Role == "" {
				t.Errorf("%s.%s: role not set by Parse", it.Key, f.Key)
			}
		}
	}
}

// annexRow is one row of ../shared/catalog/annex.tsv.
type annexRow struct {
	line                                   int
	no                                     int
	categoryZH, categoryEN, itemZH, itemEN string
	fieldsZH, fieldsEN                     []string
	sharingZH, sharing                     string
}

func readAnnex(t *testing.T) []annexRow {
	t.Helper()
	f, err := os.Open("../../../shared/catalog/annex.tsv")
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("../../../shared/catalog/annex.tsv is absent (the shared folder is not next to the repository)")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []annexRow
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			continue
		}
		col := strings.Split(sc.Text(), "\t")
		if len(col) != 9 {
			t.Fatalf("annex.tsv line %d: %d columns, want 9", line, len(col))
		}
		no, err := strconv.Atoi(col[0])
		if err != nil {
			t.Fatalf("annex.tsv line %d: category number: %v", line, err)
		}
		r := annexRow{line: line, no: no, categoryZH: col[1], categoryEN: col[2], itemZH: col[3], itemEN: col[4],
			sharingZH: col[7], sharing: col[8]}
		if col[5] != "" {
			r.fieldsZH = strings.Split(col[5], "、")
			r.fieldsEN = strings.Split(col[6], ",")
			if len(r.fieldsZH) != len(r.fieldsEN) {
				t.Fatalf("annex.tsv line %d: %d Chinese field names, %d keys", line, len(r.fieldsZH), len(r.fieldsEN))
			}
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestMatchesAnnex(t *testing.T) {
	rows := readAnnex(t)
	c := Default()
	items := c.Items()
	if len(rows) != len(items) {
		t.Errorf("annex has %d items, catalog %d", len(rows), len(items))
	}
	annexFields := map[string]map[string]bool{}
	for i, r := range rows {
		it, err := c.Item(r.itemEN)
		if err != nil {
			t.Errorf("annex.tsv line %d: %v", r.line, err)
			continue
		}
		if i < len(items) && items[i] != it {
			t.Errorf("annex.tsv line %d: item %s is at position %d in the annex but %s is there in the catalog", r.line, r.itemEN, i, items[i].Key)
		}
		cat := it.Category
		if cat.No != r.no || cat.Key != r.categoryEN || cat.NameZH != r.categoryZH {
			t.Errorf("annex.tsv line %d: item %s in category %d %s %s, want %d %s %s",
				r.line, it.Key, cat.No, cat.Key, cat.NameZH, r.no, r.categoryEN, r.categoryZH)
		}
		if it.NameZH != r.itemZH {
			t.Errorf("annex.tsv line %d: item %s name_zh %q, want %q", r.line, it.Key, it.NameZH, r.itemZH)
		}
		if string(it.Sharing) != r.sharing || it.Sharing.NameZH() != r.sharingZH {
			t.Errorf("annex.tsv line %d: item %s sharing %s (%s), want %s (%s)", r.line, it.Key, it.Sharing, it.Sharing.NameZH(), r.sharing, r.sharingZH)
		}
		annexFields[it.Key] = map[string]bool{}
		for j, key := range r.fieldsEN {
			annexFields[it.Key][key] = true
			_, f, err := c.Field(it.Key, key)
			if err != nil {
				t.Errorf("annex.tsv line %d: %v", r.line, err)
				continue
			}
			if !f.FromAnnex {
				t.Errorf("annex.tsv line %d: %s.%s is listed by the annex but from_annex is false", r.line, it.Key, key)
			}
			if f.NameZH != r.fieldsZH[j] {
				t.Errorf("annex.tsv line %d: %s.%s name_zh %q, want %q", r.line, it.Key, key, f.NameZH, r.fieldsZH[j])
			}
		}
	}
	for _, it := range items {
		for _, f := range it.Fields {
			if f.FromAnnex && !annexFields[it.Key][f.Key] {
				t.Errorf("%s.%s has from_annex true but the annex does not list it", it.Key, f.Key)
			}
		}
	}
}

func TestSubjects(t *testing.T) {
	for _, it := range Default().Items() {
		want := SubjectEnterprise
		switch it.Category.No {
		case 9, 11, 17:
			want = SubjectPerson
		}
		if it.Subject != want {
			t.Errorf("%s (category %d): subject %s, want %s", it.Key, it.Category.No, it.Subject, want)
		}
	}
	if n := len(mustCategory(t, 11).Items); n != 5 {
		t.Errorf("category 11 has %d items, want 5", n)
	}
}

func mustCategory(t *testing.T, no int) *Category {
	t.Helper()
	cat, err := Default().Category(no)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// naturalPersonNames are fields outside the person-subject items that hold a natural person's name.
var naturalPersonNames = map[string]bool{"legal_rep_name": true, "shareholder_name": true}

func TestSensitivityAndAuthorization(t *testing.T) {
	residentIDs := map[string]bool{}
	for _, it := range Default().Items() {
		var highest Sensitivity
		for _, f := range it.Fields {
			highest = max(highest, f.Sensitivity)
			where := it.Key + "." + f.Key
			if f.IDKind == "resident_id" {
				residentIDs[it.Key] = true
				if f.Sensitivity != Personal {
					t.Errorf("%s: resident ID with sensitivity %d, want 3", where, f.Sensitivity)
				}
			}
			personName := strings.HasSuffix(f.Key, "_name") && (it.Subject == SubjectPerson || naturalPersonNames[f.Key])
			if (personName || f.Key == "transferee" || f.Key == "marital_status") && f.Sensitivity != Personal {
				t.Errorf("%s: natural person's name or marital status with sensitivity %d, want 3", where, f.Sensitivity)
			}
			if (f.Key == "uscc" || f.Key == "enterprise_name") && f.Sensitivity != Public {
				t.Errorf("%s: registered public fact with sensitivity %d, want 1", where, f.Sensitivity)
			}
			if f.Key == "uscc" && (f.Type != TypeID || f.IDKind != "uscc") {
				t.Errorf("%s: credit code is %s/%s, want id/uscc", where, f.Type, f.IDKind)
			}
			if f.Type.Numeric() && (strings.Contains(f.Key, "amount") || strings.HasSuffix(f.Key, "_fee")) && !strings.HasPrefix(f.Unit, "CNY") {
				t.Errorf("%s: an amount with unit %q, want CNY", where, f.Unit)
			}
			if f.Type == TypeInt && (strings.HasSuffix(f.Key, "_count") || strings.HasSuffix(f.Key, "_12m") ||
				strings.HasSuffix(f.Key, "_24m") || strings.HasSuffix(f.Key, "_36m")) && !strings.Contains(f.Key, "_change_") &&
				(f.Min == nil || *f.Min < 0) {
				t.Errorf("%s: a count without min 0", where)
			}
		}
		if it.Sensitivity != highest {
			t.Errorf("%s: sensitivity %d, highest field %d", it.Key, it.Sensitivity, highest)
		}
		if it.Subject == SubjectPerson && it.Sensitivity != Personal {
			t.Errorf("%s: about a natural person but sensitivity %d", it.Key, it.Sensitivity)
		}
		want := it.Sharing.Authorized() || it.Sensitivity == Personal || it.Subject == SubjectPerson
		if it.NeedsAuthorization != want {
			t.Errorf("%s: needs_authorization %v, the rule gives %v", it.Key, it.NeedsAuthorization, want)
		}
	}
	for _, key := range []string{"owner_real_estate", "owner_real_estate_mortgages", "farmer_housing", "operator_basic",
		"insurance", "subsidies", "legal_rep_marital_status"} {
		if !residentIDs[key] {
			t.Errorf("%s has no resident ID field", key)
		}
	}
	// Physically aggregated items without personal information are the ones shared without
	// authorization; category 11's locally aggregated insurance and subsidies still need it.
	for key, want := range map[string]bool{"dishonest_judgment_debtors": false, "water": false, "insurance": true,
		"subsidies": true, "transport_licence": true, "designated_unit": true, "construction_licence": false} {
		it, err := Default().Item(key)
		if err != nil {
			t.Fatal(err)
		}
		if it.NeedsAuthorization != want {
			t.Errorf("%s: needs_authorization %v, want %v", key, it.NeedsAuthorization, want)
		}
	}
}

func TestLookups(t *testing.T) {
	c := Default()
	it, f, err := c.Field("tax_arrears_history", "arrears_amount_24m")
	if err != nil {
		t.Fatal(err)
	}
	if it.Category.No != 3 || f.Type != TypeFloat || f.Unit != "CNY" || f.Min == nil || *f.Min != 0 || !f.Feature() {
		t.Errorf("tax_arrears_history.arrears_amount_24m = %+v in category %d", f, it.Category.No)
	}
	_, f, err = c.Field("legal_rep_marital_status", "marital_status")
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != TypeEnum || strings.Join(f.Values, ",") != "unmarried,married,divorced,widowed" {
		t.Errorf("marital_status = %s %v", f.Type, f.Values)
	}
	if _, err := c.Item("no_such_item"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Item(no_such_item) error %v, want ErrUnknown", err)
	}
	if _, _, err := c.Field("water", "no_such_field"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Field(water, no_such_field) error %v, want ErrUnknown", err)
	}
	for _, no := range []int{0, 18} {
		if _, err := c.Category(no); !errors.Is(err, ErrUnknown) {
			t.Errorf("Category(%d) error %v, want ErrUnknown", no, err)
		}
	}
	if cat := mustCategory(t, 17); cat.Key != "marital_status" {
		t.Errorf("Category(17) = %s", cat.Key)
	}
}
