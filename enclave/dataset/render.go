package dataset

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteListText writes the entries of List as an aligned table.
func WriteListText(w io.Writer, entries []Entry) error {
	if len(entries) == 0 {
		_, err := io.WriteString(w, "no datasets; insitu ingest writes one\n")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "dataset\tversion\tclass\tcreated\tsubjects\tcolumns\tsources")
	for _, e := range entries {
		if e.Problem != "" {
			fmt.Fprintf(tw, "%s\tv%d\t-\t-\t-\t-\tunreadable: %s\n", e.Name, e.Version, e.Problem)
			continue
		}
		fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\t%d\t%d\t%s\n", e.Name, e.Version, e.Class,
			e.Created.Format(time.DateTime), e.Subjects, e.Columns, strings.Join(e.Sources, ", "))
	}
	return tw.Flush()
}

// WriteText writes the manifest readably: the version, its columns, parts, sources and quality
// summary.
func (m *Manifest) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "dataset %s v%d (%s), %d subjects keyed by %s, created %s\n",
		m.Name, m.Version, m.Class, m.Subjects, m.SubjectKind, m.Created.Format(time.RFC3339))
	if m.Description != "" {
		fmt.Fprintf(&b, "  %s\n", m.Description)
	}
	b.WriteString("\ncolumns:\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  column\ttype\tunit\tprovider\tsource\tsensitivity\tname")
	for _, c := range m.Columns {
		typ := c.CatalogType
		if c.IDKind != "" {
			typ += " (" + c.IDKind + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%s\n", c.Name, typ, c.Unit, dash(c.Provider), dash(c.Source), c.Sensitivity, c.NameEN)
	}
	tw.Flush()
	b.WriteString("\nparts:\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  source\tprovider\tformat\tfile\trows\tsubjects\tstored bytes\tcontent sha256")
	for i, p := range m.Parts {
		s := m.Sources[i]
		file := s.File
		if file == "" {
			file = "(query " + short(s.QuerySHA256) + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", p.Source, s.Provider, s.Format, file, p.Rows, p.Subjects, p.CipherBytes, short(p.PlainSHA256))
	}
	tw.Flush()
	b.WriteString("\nquality:\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  source\tread\taccepted\trejected\tinvalid ids\tduplicates\tleast complete field")
	for _, q := range m.Quality {
		least, lc := "", 2.0
		for _, c := range m.Columns {
			if v, ok := q.Completeness[c.Name]; ok && v < lc {
				least, lc = c.Name, v
			}
		}
		if least != "" {
			least += " " + strconv.FormatFloat(100*lc, 'f', 1, 64) + "%"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%s\n", q.Source, q.RowsRead, q.RowsAccepted, q.RowsRejected, q.InvalidIDs, q.Duplicates, dash(least))
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteText writes every check with its outcome, then a closing line.
func (r *VerifyResult) WriteText(w io.Writer) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks {
		status := "ok"
		if !c.OK {
			status = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", status, c.What, c.Detail)
	}
	tw.Flush()
	if r.OK {
		fmt.Fprintf(&b, "dataset %s v%d verified: %d checks passed\n", r.Name, r.Version, len(r.Checks))
	} else {
		fmt.Fprintf(&b, "dataset %s v%d FAILED verification: %d of %d checks failed\n", r.Name, r.Version, len(r.Failed()), len(r.Checks))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}
