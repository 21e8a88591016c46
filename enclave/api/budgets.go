package api

import (
	"net/http"

	"insitu/enclave/aggregate"
)

// PrivacyBudget is one (bank, dataset) pair's privacy budget for aggregate-mode jobs: the total ε
// at δ (Default when no steward set one), what the bank's jobs spent and what remains, in ε.
type PrivacyBudget struct {
	Bank      string  `json:"bank"`
	Dataset   string  `json:"dataset"`
	Epsilon   float64 `json:"epsilon"`
	Delta     float64 `json:"delta"`
	Default   bool    `json:"default"`
	Spent     float64 `json:"epsilon_spent"`
	Remaining float64 `json:"epsilon_remaining"`
	Jobs      int     `json:"jobs"`
}

// PrivacyBudgets is the answer of GET /v1/budgets: the pairs with a budget set or a spend recorded
// (and the asked pair when both ?bank= and ?dataset= are given), and the minimum cell count k.
type PrivacyBudgets struct {
	Budgets  []PrivacyBudget `json:"budgets"`
	MinCount int             `json:"min_count"`
}

// BudgetSetting is the body of PUT /v1/budgets/{bank}/{dataset}: the bank's total ε on the dataset
// and, when not zero, its δ (in (0, aggregate.MaxDelta]); zero keeps the budget's δ.
type BudgetSetting struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta,omitempty"`
}

// MinCountSetting is the body of PUT /v1/budgets/min-count: the threshold k below which a noisy
// cell is suppressed.
type MinCountSetting struct {
	MinCount int `json:"min_count"`
}

func budgetFrom(a aggregate.Account) PrivacyBudget {
	return PrivacyBudget{Bank: a.Bank, Dataset: a.Dataset, Epsilon: a.Epsilon, Delta: a.Delta, Default: a.Default,
		Spent: a.EpsilonSpent, Remaining: a.EpsilonLeft(), Jobs: a.Jobs}
}

func (s *Server) listBudgets(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	bank, ds := r.URL.Query().Get("bank"), r.URL.Query().Get("dataset")
	accts, err := s.e.Privacy.Accounts(r.Context(), bank, ds)
	if err != nil {
		return err
	}
	if bank != "" && ds != "" && len(accts) == 0 {
		a, err := s.e.Privacy.Account(r.Context(), bank, ds)
		if err != nil {
			return err
		}
		accts = append(accts, a)
	}
	k, err := s.e.Privacy.MinCount(r.Context())
	if err != nil {
		return err
	}
	out := PrivacyBudgets{Budgets: make([]PrivacyBudget, 0, len(accts)), MinCount: k}
	for _, a := range accts {
		out.Budgets = append(out.Budgets, budgetFrom(a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) setBudget(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var b BudgetSetting
	if err := decodeJSON(r, &b); err != nil {
		return err
	}
	bank, ds := r.PathValue("bank"), r.PathValue("dataset")
	if err := s.e.Privacy.SetBudgetDelta(r.Context(), c.Name, bank, ds, b.Epsilon, b.Delta); err != nil {
		return err
	}
	a, err := s.e.Privacy.Account(r.Context(), bank, ds)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, budgetFrom(a))
	return nil
}

func (s *Server) setMinCount(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var m MinCountSetting
	if err := decodeJSON(r, &m); err != nil {
		return err
	}
	if err := s.e.Privacy.SetMinCount(r.Context(), c.Name, m.MinCount); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}
