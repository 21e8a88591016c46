package console

import "testing"

var acceptLangCases = []struct{ header, want string }{
	{"", LangEN},
	{"zh-CN,zh;q=0.9,en;q=0.8", LangZH},
	{"en-US,en;q=0.9,zh-CN;q=0.8", LangEN},
	{"en;q=0.5, zh-TW;q=0.7", LangZH},
	{"fr-FR, de;q=0.9", LangEN},
	{"zh", LangZH},
	{"fr, zh-Hans-CN;q=0.4", LangZH},
	{"en;q=abc, zh;q=0.1", LangEN},
}

func TestAcceptLang(t *testing.T) {
	for _, c := range acceptLangCases {
		if got := acceptLang(c.header); got != c.want {
			t.Errorf("acceptLang(%q) = %s, want %s", c.header, got, c.want)
		}
	}
}

func TestCatalogsComplete(t *testing.T) {
	for key := range catalogs[LangEN] {
		if _, ok := catalogs[LangZH][key]; !ok {
			t.Errorf("message %q has no Chinese", key)
		}
	}
	for key := range catalogs[LangZH] {
		if _, ok := catalogs[LangEN][key]; !ok {
			t.Errorf("message %q has no English", key)
		}
	}
}

func FuzzAcceptLang(f *testing.F) {
	for _, c := range acceptLangCases {
		f.Add(c.header)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if got := acceptLang(h); got != LangEN && got != LangZH {
			t.Fatalf("acceptLang(%q) = %q", h, got)
		}
	})
}
