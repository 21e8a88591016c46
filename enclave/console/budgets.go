package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"insitu/enclave/aggregate"
	"insitu/enclave/audit"
)

// budgetEvent is one change or spend of a privacy budget, from the audit log.
type budgetEvent struct {
	audit.Record
	Bank, Dataset string
}

type budgetsData struct {
	Accounts []aggregate.Account
	History  []budgetEvent
	Bank     string
	Dataset  string
}

func (c *Console) budgetsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.showBudgets(w, r, s, http.StatusOK, "", "")
}

func (c *Console) showBudgets(w http.ResponseWriter, r *http.Request, s *session, status int, notice, problem string) error {
	if c.e.Privacy == nil {
		return notFound("this enclave keeps no privacy budgets")
	}
	q := r.URL.Query()
	d := budgetsData{Bank: strings.TrimSpace(q.Get("bank")), Dataset: strings.TrimSpace(q.Get("dataset"))}
	var err error
	if d.Accounts, err = c.e.Privacy.Accounts(r.Context(), d.Bank, d.Dataset); err != nil {
		return err
	}
	// The history: budget changes and spends, newest first, at most 200.
	var after int64
	for {
		recs, err := c.e.Audit.Records(r.Context(), after, 1000)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			if rec.Kind != aggregate.KindBudgetChange && rec.Kind != aggregate.KindPrivacySpend {
				continue
			}
			var p struct {
				Bank    string `json:"bank"`
				Dataset string `json:"dataset"`
			}
			json.Unmarshal(rec.Payload, &p)
			if (d.Bank != "" && p.Bank != d.Bank) || (d.Dataset != "" && p.Dataset != d.Dataset) {
				continue
			}
			d.History = append(d.History, budgetEvent{Record: rec, Bank: p.Bank, Dataset: p.Dataset})
		}
		after = recs[len(recs)-1].Seq
	}
	for i, j := 0, len(d.History)-1; i < j; i, j = i+1, j-1 {
		d.History[i], d.History[j] = d.History[j], d.History[i]
	}
	if len(d.History) > 200 {
		d.History = d.History[:200]
	}
	c.render(w, r, s, status, "budgets", "budgets.title", d, notice, problem)
	return nil
}

func (c *Console) setBudget(w http.ResponseWriter, r *http.Request, s *session) error {
	if c.e.Privacy == nil {
		return notFound("this enclave keeps no privacy budgets")
	}
	bank, ds := strings.TrimSpace(r.PostFormValue("bank")), strings.TrimSpace(r.PostFormValue("dataset"))
	eps, err := strconv.ParseFloat(strings.TrimSpace(r.PostFormValue("epsilon")), 64)
	l := pickLang(r)
	if err != nil || bank == "" || ds == "" {
		return c.showBudgets(w, r, s, http.StatusBadRequest, "", l.T("budgets.bad"))
	}
	if err := c.e.Privacy.SetBudget(r.Context(), s.party, bank, ds, eps); err != nil {
		if errors.Is(err, aggregate.ErrSetting) {
			return c.showBudgets(w, r, s, http.StatusBadRequest, "", err.Error())
		}
		return err
	}
	return c.showBudgets(w, r, s, http.StatusOK, l.T("budgets.done"), "")
}
