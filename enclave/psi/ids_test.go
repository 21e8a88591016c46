package psi_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"insitu/connectors/ident"
	"insitu/enclave/psi"
)

func TestReadIDs(t *testing.T) {
	ids := usccs(9, 3)
	lower := strings.ToLower(ids[2])
	bad := ids[1][:17] + string("0123456789"[(strings.IndexByte("0123456789", ids[1][17])+1)%10])
	if ids[1][17] < '0' || ids[1][17] > '9' {
		bad = ids[1][:17] + "0"
	}
	file := "\uFEFFname,USCC,label\n" +
		"a," + ids[0] + ",1\n" +
		"b," + bad + ",0\n" +
		"c, " + lower + " ,0\n" +
		"d,,1\n" +
		"e\n" +
		"f," + ids[0] + ",1\n" +
		"g," + ids[2] + ",1\n"
	f, err := psi.ReadIDs("customers.csv", strings.NewReader(file), ident.KindUSCC)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{ids[0], ids[2]}; !slices.Equal(f.IDs, want) || !slices.Equal(f.Rows, []int64{1, 3}) {
		t.Errorf("ids %v rows %v", f.IDs, f.Rows)
	}
	if f.DataRows != 7 || f.Duplicates != 2 || f.InvalidRows != 3 || len(f.Invalid) != 3 {
		t.Fatalf("rows %d duplicates %d invalid %d", f.DataRows, f.Duplicates, f.InvalidRows)
	}
	e := f.Invalid[0]
	if e.Row != 2 || e.Line != 3 || e.Column != "USCC" || e.Rule != ident.RuleCheck || !errors.Is(e, ident.ErrInvalid) {
		t.Errorf("first invalid row: %+v", e)
	}
	if f.Invalid[1].Row != 4 || f.Invalid[1].Rule != ident.RuleEmpty || f.Invalid[2].Row != 5 {
		t.Errorf("invalid rows %+v %+v", f.Invalid[1], f.Invalid[2])
	}
	for _, bad := range []string{"", "name,label\nx,1\n", "id\n\"unterminated\n"} {
		if _, err := psi.ReadIDs("x.csv", strings.NewReader(bad), ident.KindUSCC); !errors.Is(err, psi.ErrIDFile) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// Personal identifiers are masked in the report.
	f, err = psi.ReadIDs("p.csv", strings.NewReader("id\n110101199003071234\n"), ident.KindResidentID)
	if err != nil || f.InvalidRows != 1 || strings.Contains(f.Invalid[0].Error(), "110101199003071234") {
		t.Errorf("resident id report %v %+v", err, f)
	}
}

func FuzzReadIDs(f *testing.F) {
	ids := usccs(10, 2)
	f.Add("id\n" + ids[0] + "\n" + ids[1] + "\n")
	f.Add("uscc,label\n" + ids[0] + ",1\nbad,0\n")
	f.Add("\uFEFFsubject_id\n\"" + ids[1] + "\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		file, err := psi.ReadIDs("f.csv", strings.NewReader(s), ident.KindUSCC)
		if err != nil {
			if !errors.Is(err, psi.ErrIDFile) {
				t.Fatalf("error %v is not ErrIDFile", err)
			}
			return
		}
		if int64(len(file.IDs))+file.Duplicates+file.InvalidRows != file.DataRows || len(file.Rows) != len(file.IDs) {
			t.Fatalf("counts do not add up: %d ids, %d duplicates, %d invalid of %d rows", len(file.IDs), file.Duplicates, file.InvalidRows, file.DataRows)
		}
		seen := map[string]bool{}
		for _, id := range file.IDs {
			if ident.Validate(ident.KindUSCC, id) != nil || seen[id] {
				t.Fatalf("invalid or repeated identifier %q", id)
			}
			seen[id] = true
		}
	})
}
