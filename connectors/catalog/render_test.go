package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestParseLang(t *testing.T) {
	for in, want := range map[string]Lang{"zh": LangZH, "ZH-cn": LangZH, " zh_Hans ": LangZH, "en": LangEN, "en-US": LangEN} {
		got, err := ParseLang(in)
		if err != nil || got != want {
			t.Errorf("ParseLang(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fr", "zhx", "english"} {
		if _, err := ParseLang(in); err == nil {
			t.Errorf("ParseLang(%q) accepted", in)
		}
	}
	if err := Default().WriteTable(&bytes.Buffer{}, "de"); err == nil {
		t.Error("WriteTable accepted language de")
	}
}

func TestDisplayWidth(t *testing.T) {
	for s, want := range map[string]int{"": 0, "tax": 3, "纳税信息": 8, "（经信息主体授权）": 18, "〔2024〕": 8,
		"R&D 强度": 8, "e\u0301": 1, "ｆｕｌｌ": 8, "≥ 0": 3} {
		if got := displayWidth(s); got != want {
			t.Errorf("displayWidth(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := Default().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b.Bytes(), []byte("\n  \"categories\": [")) {
		t.Error("JSON is not indented")
	}
	if bytes.Contains(b.Bytes(), []byte(`\u0026`)) {
		t.Error("JSON escapes & as \\u0026")
	}
	var doc JSONDocument
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Categories) != 17 || doc.CategoryCount != 17 || doc.ItemCount != annexItems {
		t.Errorf("%d categories (count %d), %d items; want 17 and %d", len(doc.Categories), doc.CategoryCount, doc.ItemCount, annexItems)
	}
	if len(doc.SharingModes) != 4 || len(doc.SensitivityLevels) != 3 {
		t.Errorf("%d sharing modes, %d sensitivity levels; want 4 and 3", len(doc.SharingModes), len(doc.SensitivityLevels))
	}
	for _, m := range doc.SharingModes {
		if m.NeedsAuthorization != (m.Key == NationalAPIAuthorized || m.Key == VerificationAuthorized) || m.NameZH == "" {
			t.Errorf("sharing mode %+v", m)
		}
	}
	items := 0
	for _, cat := range doc.Categories {
		items += len(cat.Items)
	}
	if items != annexItems {
		t.Errorf("JSON has %d items, want %d", items, annexItems)
	}
	tax := doc.Categories[2]
	if tax.No != 3 || tax.NameZH != "纳税信息" || len(tax.Items) != 3 {
		t.Fatalf("category 3 = %d %s with %d items", tax.No, tax.NameZH, len(tax.Items))
	}
	arrears := tax.Items[1]
	if arrears.Key != "tax_arrears_history" || arrears.Sharing != NationalAPIAuthorized || !arrears.NeedsAuthorization || arrears.Sensitivity != Confidential {
		t.Errorf("tax_arrears_history = %+v", arrears)
	}
	f := arrears.Fields[0]
	if f.Key != "arrears_amount_24m" || f.Type != TypeFloat || f.Unit != "CNY" || f.Min == nil || *f.Min != 0 || f.Role != RoleFeature || f.FromAnnex {
		t.Errorf("first field of tax_arrears_history = %+v", f)
	}
	marital := doc.Categories[16].Items[0]
	if marital.Subject != SubjectPerson || marital.Fields[1].IDKind != "resident_id" || marital.Fields[1].Sensitivity != Personal {
		t.Errorf("legal_rep_marital_status = %+v, resident_id %+v", marital, marital.Fields[1])
	}
}

func table(t *testing.T, lang string) string {
	t.Helper()
	var b bytes.Buffer
	if err := Default().WriteTable(&b, lang); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestWriteTable(t *testing.T) {
	zh := table(t, "zh")
	for _, want := range []string{"17 个大类，37 个信息项", "3  纳税信息 (tax)", "3.2  tax_arrears_history  历史欠税信息",
		"共享方式：国家层面接口调用（经信息主体授权）", "国家层面以物理归集方式共享至全国融资信用服务平台", "地方层面物理归集",
		"数据核验（经信息主体授权）", "信息主体：自然人", "信息主体授权：不需要", "敏感度：3 个人信息", "标识号(resident_id)",
		"unmarried | married | divorced | widowed"} {
		if !strings.Contains(zh, want) {
			t.Errorf("zh table lacks %q", want)
		}
	}
	en := table(t, "en")
	for _, want := range []string{"17 categories, 37 items", "3  Tax (tax)", "3.2  tax_arrears_history  Tax arrears history",
		"subject: natural person", "authorization: required", "sensitivity: 2 confidential",
		"sharing: data verification only, with the subject's authorization (verification_authorized)", "id(uscc)"} {
		if !strings.Contains(en, want) {
			t.Errorf("en table lacks %q", want)
		}
	}
	for i := 1; i <= 17; i++ {
		cat := mustCategory(t, i)
		if !strings.Contains(zh, fmt.Sprintf("\n%d  %s (%s)\n", cat.No, cat.NameZH, cat.Key)) {
			t.Errorf("zh table lacks category %d %s", i, cat.NameZH)
		}
	}
	for _, it := range Default().Items() {
		if !strings.Contains(en, "  "+it.Key+"  "+it.NameEN+"\n") {
			t.Errorf("en table lacks item %s", it.Key)
		}
	}
}

// TestTableAligned checks that in every field block of the Chinese table each column starts at the
// same display column in the header and in every row, although names mix CJK and ASCII.
func TestTableAligned(t *testing.T) {
	lines := strings.Split(table(t, "zh"), "\n")
	blocks := 0
	for i, l := range lines {
		if !strings.HasPrefix(l, "        字段") {
			continue
		}
		blocks++
		// Column starts by display width: the second column (名称) and the sixth (敏感度).
		nameCol := displayWidth(l[:strings.Index(l, "名称")])
		sensCol := displayWidth(l[:strings.Index(l, "敏感度")])
		for _, row := range lines[i+1:] {
			if row == "" {
				break
			}
			cells := strings.Fields(row)
			nameAt := displayWidth(row[:strings.Index(row, cells[1])])
			if nameAt != nameCol {
				t.Errorf("line %d: name starts at column %d, header at %d: %q", i+1, nameAt, nameCol, row)
			}
			if w := displayWidth(row); w <= sensCol {
				t.Errorf("row shorter than the sensitivity column: %q", row)
				continue
			}
			if c := cellAt(row, sensCol); c != "1" && c != "2" && c != "3" {
				t.Errorf("line %d: %q at the sensitivity column, want 1, 2 or 3: %q", i+1, c, row)
			}
		}
	}
	if blocks != annexItems {
		t.Errorf("%d field blocks, want %d", blocks, annexItems)
	}
}

// cellAt returns the text starting at display column col of line up to the next blank.
func cellAt(line string, col int) string {
	w := 0
	for i, r := range line {
		if w == col {
			rest := line[i:]
			if j := strings.IndexByte(rest, ' '); j >= 0 {
				return rest[:j]
			}
			return rest
		}
		w += displayWidth(string(r))
	}
	return ""
}
