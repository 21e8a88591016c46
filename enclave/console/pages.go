package console

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"insitu/connectors/catalog"
	"insitu/connectors/ident"
	"insitu/enclave/audit"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
	"insitu/enclave/job"
	"insitu/enclave/report"
)

type releasedRow struct {
	J       *job.Job
	Receipt *gate.Receipt
	Epsilon string
	Chart   *charts
}

func (c *Console) releasedPage(w http.ResponseWriter, r *http.Request, s *session) error {
	js, err := c.e.Jobs.List(r.Context(), "")
	if err != nil {
		return err
	}
	l := pickLang(r)
	var rows []releasedRow
	for i := len(js) - 1; i >= 0; i-- {
		j := js[i]
		if j.State != job.Released {
			continue
		}
		row := releasedRow{J: j}
		if j.Manifest.Epsilon != nil {
			row.Epsilon = strconv.FormatFloat(*j.Manifest.Epsilon, 'g', -1, 64)
		}
		if c.o.Results != nil {
			if _, receipt, err := c.o.Results.Result(r.Context(), j.ID); err == nil {
				row.Receipt, _ = gate.ParseReceipt(receipt)
			}
		}
		cv, err := c.e.Jobs.Curve(r.Context(), j.ID)
		if err != nil && !errors.Is(err, job.ErrNotFound) {
			return err
		}
		if cv != nil {
			row.Chart = newCharts(cv, l)
		}
		rows = append(rows, row)
	}
	c.render(w, r, s, http.StatusOK, "released", "released.title", rows, "", "")
	return nil
}

// auditFilter is the audit page's query.
type auditFilter struct {
	Kind, Actor string
	After       int64
}

func (f auditFilter) match(rec *audit.Record) bool {
	return (f.Kind == "" || string(rec.Kind) == f.Kind) && (f.Actor == "" || rec.Actor == f.Actor)
}

type auditData struct {
	Report  *audit.Report
	Err     string
	Records []audit.Record
	Filter  auditFilter
	Kinds   []string
	Next    int64
}

const auditPageSize = 100

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	f := auditFilter{Kind: q.Get("kind"), Actor: q.Get("actor")}
	f.After, _ = strconv.ParseInt(q.Get("after"), 10, 64)
	d := auditData{Filter: f}
	rep, err := c.e.VerifyAudit(r.Context(), nil)
	if err != nil {
		return err
	}
	d.Report = rep
	if !rep.OK() {
		d.Err = rep.Err().Error()
	}
	kinds := map[string]bool{}
	after := f.After
	for len(d.Records) < auditPageSize {
		recs, err := c.e.Audit.Records(r.Context(), after, 1000)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		for i := range recs {
			kinds[string(recs[i].Kind)] = true
			if f.match(&recs[i]) && len(d.Records) < auditPageSize {
				d.Records = append(d.Records, recs[i])
				d.Next = recs[i].Seq
			}
		}
		after = recs[len(recs)-1].Seq
	}
	if len(d.Records) < auditPageSize {
		d.Next = 0
	}
	for k := range kinds {
		d.Kinds = append(d.Kinds, k)
	}
	slices.Sort(d.Kinds)
	c.render(w, r, s, http.StatusOK, "audit", "audit.title", d, "", "")
	return nil
}

// auditExport writes the filtered records as JSON lines.
func (c *Console) auditExport(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	f := auditFilter{Kind: q.Get("kind"), Actor: q.Get("actor")}
	w.Header().Set("Content-Type", "application/jsonl")
	w.Header().Set("Content-Disposition", `attachment; filename="audit.jsonl"`)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	var after int64
	for {
		recs, err := c.e.Audit.Records(r.Context(), after, 1000)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		for i := range recs {
			if f.match(&recs[i]) {
				if err := enc.Encode(&recs[i]); err != nil {
					return err
				}
			}
		}
		after = recs[len(recs)-1].Seq
	}
	return bw.Flush()
}

type authData struct {
	IDType, Query string
	Kinds         []ident.Kind
	Searched      bool
	Found         []consent.Authorization
	Counts        []consent.BankCounts
	Categories    []categoryCount
	Problem       string
}

// categoryCount is how many current authorizations cover an item of a catalog category.
type categoryCount struct {
	No    int
	Name  string
	Count int
}

// maxCategoryScan bounds the authorizations read to count them by category.
const maxCategoryScan = 200000

// categoryCounts counts the current authorizations by the catalog categories of their items (an
// authorization naming items of two categories counts in both).
func (c *Console) categoryCounts(r *http.Request, l *lang) ([]categoryCount, error) {
	cat := catalog.Default()
	counts := map[int]int{}
	var after int64
	for read := 0; read < maxCategoryScan; {
		page, err := c.e.Consent.List(r.Context(), consent.Filter{Status: consent.StatusCurrent, At: c.now(), AfterID: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			break
		}
		for _, a := range page {
			seen := map[int]bool{}
			for _, key := range a.Items {
				if it, err := cat.Item(key); err == nil && it.Category != nil && !seen[it.Category.No] {
					seen[it.Category.No] = true
					counts[it.Category.No]++
				}
			}
		}
		read += len(page)
		after = page[len(page)-1].ID
	}
	var out []categoryCount
	for _, k := range cat.Categories {
		if n := counts[k.No]; n > 0 {
			name := k.NameEN
			if l.Code == LangZH {
				name = k.NameZH
			}
			out = append(out, categoryCount{No: k.No, Name: name, Count: n})
		}
	}
	return out, nil
}

func (c *Console) authPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.showAuth(w, r, s, http.StatusOK, "", "")
}

func (c *Console) showAuth(w http.ResponseWriter, r *http.Request, s *session, status int, notice, problem string) error {
	q := r.URL.Query()
	d := authData{IDType: q.Get("id_type"), Query: strings.TrimSpace(q.Get("q")), Kinds: []ident.Kind{ident.KindUSCC, ident.KindResidentID}}
	if d.IDType == "" {
		d.IDType = string(ident.KindUSCC)
	}
	var err error
	if d.Counts, err = c.e.Consent.Counts(r.Context(), "", c.now()); err != nil {
		return err
	}
	if d.Categories, err = c.categoryCounts(r, pickLang(r)); err != nil {
		return err
	}
	if d.Query != "" {
		d.Searched = true
		kind, err := ident.ParseKind(d.IDType)
		if err == nil {
			d.Found, err = c.e.Consent.List(r.Context(), consent.Filter{IDType: kind, Identifier: d.Query, Limit: 200})
		}
		if err != nil {
			if !errors.Is(err, consent.ErrInvalid) && !errors.Is(err, ident.ErrInvalid) {
				return err
			}
			problem = err.Error()
		}
	}
	c.render(w, r, s, status, "auth", "auth.title", d, notice, problem)
	return nil
}

func (c *Console) revoke(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return notFound("no authorization " + r.PathValue("id"))
	}
	l := pickLang(r)
	if _, err := c.e.Consent.Revoke(r.Context(), s.party, id, strings.TrimSpace(r.PostFormValue("reason"))); err != nil {
		if errors.Is(err, consent.ErrInvalid) || errors.Is(err, consent.ErrNotFound) || errors.Is(err, consent.ErrAlreadyRevoked) {
			return c.showAuth(w, r, s, http.StatusBadRequest, "", err.Error())
		}
		return err
	}
	return c.showAuth(w, r, s, http.StatusOK, l.T("auth.done"), "")
}

type usageData struct {
	Provider, Category, Since string
	Asked                     bool
	Rows                      []report.Row
	Query                     string // the query string of the downloads
}

func (c *Console) usagePage(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	d := usageData{Provider: strings.TrimSpace(q.Get("provider")), Category: strings.TrimSpace(q.Get("category")), Since: strings.TrimSpace(q.Get("since"))}
	format := q.Get("format")
	problem := ""
	if d.Provider != "" || d.Category != "" {
		d.Asked = true
		rq := report.Query{Provider: d.Provider, Category: d.Category}
		var err error
		if d.Since != "" {
			if rq.Since, err = time.Parse("2006-01-02", d.Since); err != nil {
				problem = "since: want a date YYYY-MM-DD"
			}
		}
		if problem == "" {
			d.Rows, err = report.Usage(r.Context(), c.e.Audit, c.e.Datasets, rq)
			if err != nil {
				if !errors.Is(err, report.ErrQuery) {
					return err
				}
				problem = err.Error()
			}
		}
		if problem == "" && (format == "csv" || format == "md") {
			name := "usage." + format
			w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
			if format == "csv" {
				w.Header().Set("Content-Type", "text/csv; charset=utf-8")
				return report.WriteCSV(w, d.Rows)
			}
			w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
			return report.WriteMarkdown(w, rq, d.Rows)
		}
		v := r.URL.Query()
		v.Del("format")
		d.Query = v.Encode()
	}
	status := http.StatusOK
	if problem != "" {
		status = http.StatusBadRequest
	}
	c.render(w, r, s, status, "usage", "usage.title", d, "", problem)
	return nil
}

type datasetRow struct {
	dataset.Entry
	Quality *dataset.QualityReport
}

func (c *Console) datasetsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	es, err := c.e.Datasets.List(r.Context())
	if err != nil {
		return err
	}
	rows := make([]datasetRow, 0, len(es))
	for _, e := range es {
		row := datasetRow{Entry: e}
		if e.Problem == "" {
			if _, q, err := c.e.Datasets.Show(r.Context(), e.Name, e.Version); err == nil {
				row.Quality = q
			}
		}
		rows = append(rows, row)
	}
	c.render(w, r, s, http.StatusOK, "datasets", "datasets.title", rows, "", "")
	return nil
}

type passkeyRow struct {
	job.Passkey
	Credential string
}

func (c *Console) passkeysPage(w http.ResponseWriter, r *http.Request, s *session) error {
	pks, err := c.e.Jobs.Passkeys(r.Context(), s.party)
	if err != nil {
		return err
	}
	rows := make([]passkeyRow, 0, len(pks))
	for _, pk := range pks {
		rows = append(rows, passkeyRow{Passkey: pk, Credential: job.CredentialString(pk.Statement.CredentialID)})
	}
	c.render(w, r, s, http.StatusOK, "passkeys", "passkeys.title", rows, "", "")
	return nil
}
