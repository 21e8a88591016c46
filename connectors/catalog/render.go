package catalog

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// Lang is the language of a rendered catalog.
type Lang string

const (
	LangZH Lang = "zh" // Chinese
	LangEN Lang = "en" // English
)

// ParseLang returns the language named s: "zh" or "en", or a language tag starting with one of them
// ("zh-CN", "en_US"), in any case.
func ParseLang(s string) (Lang, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for _, want := range []Lang{LangZH, LangEN} {
		if l == string(want) || strings.HasPrefix(l, string(want)+"-") || strings.HasPrefix(l, string(want)+"_") {
			return want, nil
		}
	}
	return "", fmt.Errorf("catalog: language %q: want zh or en", s)
}

// text is the fixed wording of a rendered table.
type text struct {
	title, counts                                      string // counts: format of the category and item counts
	subject, sharing, authorization, sensitivity, desc string
	required, notRequired, annex, project              string
	headers                                            []string
	subjects                                           map[Subject]string
	roles                                              map[FieldRole]string
	types                                              map[FieldType]string
	sep                                                string
}

var texts = map[Lang]text{
	LangEN: {
		title:   "Credit-information sharing list (annex of 国办发〔2024〕15号)",
		counts:  "%d categories, %d items",
		subject: "subject", sharing: "sharing", authorization: "authorization", sensitivity: "sensitivity",
		desc:     "note",
		required: "required", notRequired: "not required", annex: "annex", project: "project",
		headers:  []string{"FIELD", "NAME", "TYPE", "UNIT", "RANGE", "SENSITIVITY", "ROLE", "SOURCE", "VALUES"},
		subjects: map[Subject]string{SubjectEnterprise: "enterprise", SubjectPerson: "natural person"},
		roles:    map[FieldRole]string{RoleIdentifier: "identifier", RoleDescriptive: "descriptive", RoleFeature: "feature"},
		sep:      ": ",
	},
	LangZH: {
		title:   "信用信息归集共享清单（国办发〔2024〕15号附件）",
		counts:  "%d 个大类，%d 个信息项",
		subject: "信息主体", sharing: "共享方式", authorization: "信息主体授权", sensitivity: "敏感度",
		desc:     "说明",
		required: "需要", notRequired: "不需要", annex: "附件", project: "自选",
		headers:  []string{"字段", "名称", "类型", "单位", "范围", "敏感度", "用途", "来源", "取值"},
		subjects: map[Subject]string{SubjectEnterprise: "企业", SubjectPerson: "自然人"},
		roles:    map[FieldRole]string{RoleIdentifier: "标识", RoleDescriptive: "描述", RoleFeature: "特征"},
		types: map[FieldType]string{TypeString: "文本", TypeEnum: "枚举", TypeInt: "整数", TypeFloat: "小数",
			TypeBool: "布尔", TypeDate: "日期", TypeID: "标识号"},
		sep: "：",
	},
}

// WriteTable writes the catalog as a readable listing in lang ("zh" or "en", see ParseLang): each
// category with its number and name, each item with its key, name, subject, sharing mode,
// authorization and sensitivity, then its fields in aligned columns (key, name, type, unit, range,
// sensitivity, role, source, enum values). Columns are aligned by display width, counting Chinese
// characters as two columns.
func (c *Catalog) WriteTable(w io.Writer, lang string) error {
	l, err := ParseLang(lang)
	if err != nil {
		return err
	}
	t := texts[l]
	name := func(zh, en string) string {
		if l == LangZH {
			return zh
		}
		return en
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s%s"+t.counts+"\n", t.title, t.sep, len(c.Categories), len(c.Items()))
	for _, cat := range c.Categories {
		fmt.Fprintf(&b, "\n%d  %s (%s)\n", cat.No, name(cat.NameZH, cat.NameEN), cat.Key)
		for ii, it := range cat.Items {
			auth := t.notRequired
			if it.NeedsAuthorization {
				auth = t.required
			}
			sharing := it.Sharing.NameEN()
			if l == LangZH {
				sharing = it.Sharing.NameZH()
			}
			sens := it.Sensitivity.String()
			if l == LangZH {
				sens = it.Sensitivity.NameZH()
			}
			fmt.Fprintf(&b, "\n   %d.%d  %s  %s\n", cat.No, ii+1, it.Key, name(it.NameZH, it.NameEN))
			fmt.Fprintf(&b, "        %s%s%s · %s%s%s (%s)\n", t.subject, t.sep, t.subjects[it.Subject], t.sharing, t.sep, sharing, it.Sharing)
			fmt.Fprintf(&b, "        %s%s%s · %s%s%d %s\n", t.authorization, t.sep, auth, t.sensitivity, t.sep, int(it.Sensitivity), sens)
			if it.Description != "" {
				fmt.Fprintf(&b, "        %s%s%s\n", t.desc, t.sep, it.Description)
			}
			rows := [][]string{t.headers}
			for _, f := range it.Fields {
				rows = append(rows, fieldRow(f, l, t))
			}
			writeAligned(&b, "        ", rows)
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func fieldRow(f *Field, l Lang, t text) []string {
	typ := string(f.Type)
	if s, ok := t.types[f.Type]; ok {
		typ = s
	}
	if f.Type == TypeID {
		typ += "(" + f.IDKind + ")"
	}
	src := t.project
	if f.FromAnnex {
		src = t.annex
	}
	sens := strconv.Itoa(int(f.Sensitivity))
	role := t.roles[f.Role]
	if role == "" {
		role = string(f.Role)
	}
	name := f.NameEN
	if l == LangZH {
		name = f.NameZH
	}
	return []string{f.Key, name, typ, f.Unit, fieldRange(f), sens, role, src, strings.Join(f.Values, " | ")}
}

// fieldRange renders a numeric field's range: "0..1", "≥ 0", "≤ 12" or "".
func fieldRange(f *Field) string {
	num := func(p *float64) string { return strconv.FormatFloat(*p, 'g', -1, 64) }
	switch {
	case f.Min != nil && f.Max != nil:
		return num(f.Min) + ".." + num(f.Max)
	case f.Min != nil:
		return "≥ " + num(f.Min)
	case f.Max != nil:
		return "≤ " + num(f.Max)
	}
	return ""
}

// writeAligned writes rows as columns separated by two spaces, padded to the widest cell of each
// column by display width; the last column is not padded and trailing blanks are trimmed.
func writeAligned(b *strings.Builder, indent string, rows [][]string) {
	var widths []int
	for _, r := range rows {
		for i, cell := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], displayWidth(cell))
		}
	}
	for _, r := range rows {
		var line strings.Builder
		line.WriteString(indent)
		for i, cell := range r {
			line.WriteString(cell)
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-displayWidth(cell)+2))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
}

// displayWidth is the number of terminal columns s takes: East Asian wide and fullwidth characters
// (CJK ideographs, kana, hangul, fullwidth forms and CJK punctuation) count two, combining marks and
// zero-width characters none, everything else one.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case r == '\u200b' || r == '\u200d' || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) || unicode.IsControl(r):
		case wide(r):
			n += 2
		default:
			n++
		}
	}
	return n
}

// wide reports whether r is East Asian Wide or Fullwidth (Unicode UAX #11), for the blocks a
// Chinese catalog uses.
func wide(r rune) bool {
	switch {
	case r < 0x1100:
		return false
	case r <= 0x115f, // Hangul Jamo initials
		r >= 0x2e80 && r <= 0x303e,   // CJK radicals, Kangxi, ideographic description, CJK symbols and punctuation
		r >= 0x3041 && r <= 0x33ff,   // kana, bopomofo, Hangul compatibility, CJK strokes, enclosed, compatibility
		r >= 0x3400 && r <= 0x4dbf,   // CJK extension A
		r >= 0x4e00 && r <= 0x9fff,   // CJK unified ideographs
		r >= 0xa000 && r <= 0xa4cf,   // Yi
		r >= 0xac00 && r <= 0xd7a3,   // Hangul syllables
		r >= 0xf900 && r <= 0xfaff,   // CJK compatibility ideographs
		r >= 0xfe10 && r <= 0xfe19,   // vertical forms
		r >= 0xfe30 && r <= 0xfe6f,   // CJK compatibility forms, small form variants
		r >= 0xff00 && r <= 0xff60,   // fullwidth forms
		r >= 0xffe0 && r <= 0xffe6,   // fullwidth signs
		r >= 0x1f300 && r <= 0x1f64f, // pictographs and emoticons
		r >= 0x20000 && r <= 0x3fffd: // CJK extensions B and later
		return true
	}
	return false
}

// SharingModeInfo describes a sharing mode in WriteJSON's legend.
type SharingModeInfo struct {
	Key                SharingMode `json:"key"`
	NameZH             string      `json:"name_zh"`
	NameEN             string      `json:"name_en"`
	NeedsAuthorization bool        `json:"needs_authorization"`
}

// SensitivityInfo describes a sensitivity level in WriteJSON's legend.
type SensitivityInfo struct {
	Level  Sensitivity `json:"level"`
	Key    string      `json:"key"`
	NameZH string      `json:"name_zh"`
}

// JSONDocument is the document WriteJSON writes.
type JSONDocument struct {
	Title             string            `json:"title"`
	CategoryCount     int               `json:"category_count"`
	ItemCount         int               `json:"item_count"`
	SharingModes      []SharingModeInfo `json:"sharing_modes"`
	SensitivityLevels []SensitivityInfo `json:"sensitivity_levels"`
	Categories        []*Category       `json:"categories"`
}

// WriteJSON writes the catalog as indented JSON: a JSONDocument with the counts, the legends of the
// sharing modes (whether each mode itself requires authorization) and sensitivity levels, and the
// categories with their items and typed fields.
func (c *Catalog) WriteJSON(w io.Writer) error {
	doc := JSONDocument{
		Title:         texts[LangEN].title,
		CategoryCount: len(c.Categories),
		ItemCount:     len(c.Items()),
		Categories:    c.Categories,
	}
	for _, m := range SharingModes {
		doc.SharingModes = append(doc.SharingModes, SharingModeInfo{m, m.NameZH(), m.NameEN(), m.Authorized()})
	}
	for _, s := range []Sensitivity{Public, Confidential, Personal} {
		doc.SensitivityLevels = append(doc.SensitivityLevels, SensitivityInfo{s, s.String(), s.NameZH()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("catalog: writing JSON: %w", err)
	}
	return nil
}
