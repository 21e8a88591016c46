package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

var header = []string{"job", "bank", "purpose", "dataset", "dataset_version", "items", "fields", "providers", "rows", "released"}

func (r Row) cells() []string {
	return []string{r.Job, r.Bank, r.Purpose, r.Dataset, r.DatasetVersion, strings.Join(r.Items, ";"), strings.Join(r.Fields, ";"),
		strings.Join(r.Providers, ";"), strconv.Itoa(r.Rows), r.Released.Format(time.RFC3339)}
}

// WriteCSV writes the rows as CSV with a header line; list cells are separated by ';'.
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	cw.Write(header)
	for _, r := range rows {
		cw.Write(r.cells())
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the query and the rows as one indented JSON object.
func WriteJSON(w io.Writer, q Query, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	out := struct {
		Provider string    `json:"provider,omitempty"`
		Category string    `json:"category,omitempty"`
		Since    time.Time `json:"since,omitzero"`
		Jobs     []Row     `json:"jobs"`
	}{q.Provider, q.Category, q.Since, rows}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteMarkdown writes a titled Markdown table of the rows, with totals.
func WriteMarkdown(w io.Writer, q Query, rows []Row) error {
	who := "provider " + q.Provider
	if q.Category != "" {
		who = "category " + q.Category
	}
	since := "all releases"
	if !q.Since.IsZero() {
		since = "released since " + q.Since.Format(time.DateOnly)
	}
	fmt.Fprintf(w, "# Data usage report: %s\n\n%s; %d jobs.\n\n", who, since, len(rows))
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat(" --- |", len(header)))
	total := 0
	for _, r := range rows {
		c := r.cells()
		for i := range c {
			c[i] = strings.ReplaceAll(c[i], "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(c, " | "))
		total += r.Rows
	}
	_, err := fmt.Fprintf(w, "\nSubject-rows used in all: %d.\n", total)
	return err
}
