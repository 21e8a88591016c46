package cohort

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"insitu/connectors/ident"
)

func TestReadLabelsGood(t *testing.T) {
	cases := []struct {
		file      string
		kind      ident.Kind
		want      map[string]float64
		positives int
		obs       map[string]string // observation dates that must be recorded
	}{
		{"good_uscc.csv", ident.KindUSCC, map[string]float64{
			"913301069AGJA1NDUY": 0,
			"91330106D42PLU3NJ1": 1, // lower case in the file
			"913301060BMP3DQHHP": 0, // surrounded by spaces
			"913301061774FTGM26": 1, // row with a two-line quoted note
			"91330106FJ20E8E20K": 0,
		}, 2, map[string]string{"913301069AGJA1NDUY": "2026-06-30", "913301061774FTGM26": "2025-12-31"}},
		{"good_bom.csv", ident.KindUSCC, map[string]float64{"91330106YK2GK0MKYC": 1, "91330106T4CW92BA9T": 0}, 1, nil},
		{"good_resident.csv", ident.KindResidentID, map[string]float64{
			"330106197003015649": 0, "330106197503022298": 1, "330106198003032304": 0}, 1, nil},
		{"good_opaque.csv", ident.KindOpaque, map[string]float64{"1": 0, "2": 1, "client-0003": 1}, 2, nil},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			l, err := ReadLabels(filepath.Join("testdata", "labels", c.file))
			if err != nil {
				t.Fatal(err)
			}
			if l.Kind != c.kind || l.Len() != len(c.want) || l.Positives() != c.positives {
				t.Errorf("kind %s, %d labels, %d positives; want %s, %d, %d", l.Kind, l.Len(), l.Positives(), c.kind, len(c.want), c.positives)
			}
			for id, y := range c.want {
				if got, ok := l.Get(id); !ok || got != y {
					t.Errorf("Get(%s) = %v, %v; want %v", id, got, ok, y)
				}
			}
			if _, ok := l.Get("not-a-subject"); ok {
				t.Error("Get of an unknown subject found a label")
			}
			for id, d := range c.obs {
				if got := l.obs[id].Format(time.DateOnly); got != d {
					t.Errorf("observation date of %s = %s, want %s", id, got, d)
				}
			}
			if c.file == "good_uscc.csv" {
				if _, ok := l.obs["913301060BMP3DQHHP"]; ok {
					t.Error("an empty observation date was recorded")
				}
			}
		})
	}
}

func TestReadLabelsMissingFile(t *testing.T) {
	_, err := ReadLabels(filepath.Join("testdata", "labels", "no-such-file.csv"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "no-such-file.csv") {
		t.Errorf("err = %v, want a not-exist error naming the file", err)
	}
}

func TestReadLabelsErrors(t *testing.T) {
	cases := []struct {
		file     string
		line     int
		row      int
		column   string
		rule     string
		contains []string
		absent   []string // text the message must not carry (whole resident ids)
		identErr string   // the ident rule, when the cause is an invalid identifier
	}{
		{file: "bad_header.csv", line: 1, rule: "header", contains: []string{`header "uscc,outcome"`, "label"}},
		{file: "two_ids.csv", line: 1, column: "id", rule: "header", contains: []string{"more than one identifier column"}},
		{file: "bad_uscc.csv", line: 4, row: 3, column: "uscc", rule: "identifier",
			contains: []string{"line 4 (data row 3)", `column "uscc"`, "913301060BMP3DQHH1", "check character"}, identErr: ident.RuleCheck},
		{file: "bad_uscc_bom.csv", line: 2, row: 1, column: "uscc", rule: "identifier",
			contains: []string{"line 2 (data row 1)", `column "uscc"`}, identErr: ident.RuleCheck},
		{file: "bad_uscc_multiline.csv", line: 4, row: 2, column: "uscc", rule: "identifier",
			contains: []string{"line 4 (data row 2)"}, identErr: ident.RuleCheck},
		{file: "bad_resident.csv", line: 3, row: 2, column: "resident_id", rule: "identifier",
			contains: []string{"line 3 (data row 2)", ident.Mask("330106197503022290")},
			absent:   []string{"330106197503022290"}, identErr: ident.RuleCheck},
		{file: "dup_resident.csv", line: 4, row: 3, column: "resident_id", rule: "unique-subject",
			contains: []string{"labelled twice", ident.Mask("330106197003015649")},
			absent:   []string{"330106197003015649"}},
		{file: "dup_uscc.csv", line: 3, row: 2, column: "uscc", rule: "unique-subject",
			contains: []string{"913301069AGJA1NDUY is labelled twice"}},
		{file: "label2.csv", line: 3, row: 2, column: "label", rule: "binary-label", contains: []string{`label "2" is not 0 or 1`}},
		{file: "bad_date.csv", line: 2, row: 1, column: "observation_date", rule: "date", contains: []string{`"2026-02-30" is not a date YYYY-MM-DD`}},
		{file: "ragged.csv", line: 3, row: 2, rule: "csv", contains: []string{"line 3 (data row 2)"}},
		{file: "empty.csv", line: 1, rule: "header", contains: []string{"empty file"}},
		{file: "header_only.csv", rule: "non-empty", contains: []string{"no labelled subjects"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", "labels", c.file)
			l, err := ReadLabels(path)
			if err == nil {
				t.Fatalf("no error; %d labels", l.Len())
			}
			var le *LabelError
			if !errors.As(err, &le) || !errors.Is(err, ErrLabels) {
				t.Fatalf("err = %T %v, want a *LabelError wrapping ErrLabels", err, err)
			}
			if le.File != path || le.Line != c.line || le.Row != c.row || le.Column != c.column || le.Rule != c.rule {
				t.Errorf("got file %q line %d row %d column %q rule %q; want %q %d %d %q %q",
					le.File, le.Line, le.Row, le.Column, le.Rule, path, c.line, c.row, c.column, c.rule)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path) || !strings.HasSuffix(msg, "(rule "+c.rule+")") {
				t.Errorf("message %q does not start with the file and end with the rule", msg)
			}
			for _, s := range c.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q lacks %q", msg, s)
				}
			}
			for _, s := range c.absent {
				if strings.Contains(msg, s) {
					t.Errorf("message %q carries %q", msg, s)
				}
			}
			var ie *ident.Error
			if c.identErr != "" {
				if !errors.As(err, &ie) || ie.Rule != c.identErr || !errors.Is(err, ident.ErrInvalid) {
					t.Errorf("cause = %v, want an ident error with rule %s", le.Err, c.identErr)
				}
			} else if errors.As(err, &ie) {
				t.Errorf("unexpected ident cause %v", ie)
			}
		})
	}
}

// residentIDRE finds 18-character candidates for resident ids in a message.
var residentIDRE = regexp.MustCompile(`[0-9]{17}[0-9Xx]`)

// FuzzParseLabels checks that ParseLabels never panics, that every failure is a *LabelError naming
// the file with coherent positions, that no error message carries a valid resident id, and that a
// success yields labels of 0 and 1 for canonical identifiers of the header's kind.
func FuzzParseLabels(f *testing.F) {
	ents, err := os.ReadDir(filepath.Join("testdata", "labels"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("testdata", "labels", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLabels(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			var le *LabelError
			if !errors.As(err, &le) || !errors.Is(err, ErrLabels) {
				t.Fatalf("err = %T %v, want *LabelError", err, err)
			}
			if le.File != "fuzz.csv" || le.Line < 0 || le.Row < 0 || (le.Row > 0 && le.Line <= le.Row) || le.Rule == "" || le.Err == nil {
				t.Fatalf("incoherent error %+v", le)
			}
			for _, cand := range residentIDRE.FindAllString(err.Error(), -1) {
				if ident.Validate(ident.KindResidentID, cand) == nil {
					t.Fatalf("error message carries the resident id %s: %v", cand, err)
				}
			}
			return
		}
		if l.Len() == 0 {
			t.Fatal("success with no labels")
		}
		pos := 0
		for id, y := range l.y {
			if y != 0 && y != 1 {
				t.Fatalf("label %v of %s", y, id)
			}
			if y == 1 {
				pos++
			}
			if canon, err := ident.Normalize(l.Kind, id); err != nil || canon != id {
				t.Fatalf("subject %q is not a canonical %s: %v", id, l.Kind, err)
			}
		}
		if pos != l.Positives() {
			t.Fatalf("Positives() = %d, counted %d", l.Positives(), pos)
		}
	})
}
