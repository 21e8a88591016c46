package console

import (
	"html/template"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"insitu/enclave/gate"
)

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"short": func(s string) string {
		s = strings.TrimPrefix(s, "sha256:")
		if len(s) > 16 {
			return s[:16] + "…"
		}
		return s
	},
	"join": strings.Join,
	"num":  func(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) },
	"jsonText": func(b []byte) string {
		if len(b) > 300 {
			return string(b[:300]) + "…"
		}
		return string(b)
	},
	"b64":   func(b []byte) string { return b64.EncodeToString(b) },
	"dict":  func(l *lang, rows []jobRow) tableArgs { return tableArgs{L: l, Rows: rows} },
	"dict2": func(l *lang, r *gate.Receipt) releaseArgs { return releaseArgs{L: l, R: r} },
}

// tableArgs and releaseArgs are what the jobtable and release templates take.
type tableArgs struct {
	L    *lang
	Rows []jobRow
}

type releaseArgs struct {
	L *lang
	R *gate.Receipt
}

// parsePages parses every page with the layout. It panics on a template error: they are embedded.
func parsePages() map[string]*template.Template {
	base := template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return out
}
