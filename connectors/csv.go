package connectors

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// hashingFile reads a file while hashing and counting its bytes.
type hashingFile struct {
	f *os.File
	h hash.Hash
	n int64
}

func openHashing(path string) (*hashingFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &hashingFile{f: f, h: sha256.New()}, nil
}

func (hf *hashingFile) Read(p []byte) (int, error) {
	n, err := hf.f.Read(p)
	hf.h.Write(p[:n])
	hf.n += int64(n)
	return n, err
}

// drain hashes the rest of the file, so that the hash covers every byte even when the parser stopped
// before the end (e.g. after the end of a gzip stream).
func (hf *hashingFile) drain() error {
	_, err := io.Copy(io.Discard, hf)
	return err
}

func (hf *hashingFile) sum() string { return hex.EncodeToString(hf.h.Sum(nil)) }

type csvProducer struct {
	r    *reader
	hf   *hashingFile
	gz   *gzip.Reader
	cr   *csv.Reader
	row  int64
	done bool
}

func openCSV(r *reader, path string) (producer, error) {
	m := r.pl.m
	opts := CSVOptions{}
	if m.CSV != nil {
		opts = *m.CSV
	}
	hf, err := openHashing(path)
	if err != nil {
		return nil, r.sourceErr(0, err, "check the path in the mapping (relative to the mapping file) or --input")
	}
	p := &csvProducer{r: r, hf: hf}
	var in io.Reader = bufio.NewReaderSize(hf, 256<<10)
	gz := strings.HasSuffix(strings.ToLower(path), ".gz")
	if opts.Gzip != nil {
		gz = *opts.Gzip
	}
	if gz {
		p.gz, err = gzip.NewReader(in)
		if err != nil {
			hf.f.Close()
			return nil, r.sourceErr(0, fmt.Errorf("not a gzip file: %w", err), "set csv.gzip: false in the mapping if the file is not compressed")
		}
		in = bufio.NewReaderSize(p.gz, 256<<10)
	}
	cr := csv.NewReader(in)
	if opts.Delimiter != "" {
		cr.Comma, _ = utf8.DecodeRuneInString(opts.Delimiter)
	}
	cr.FieldsPerRecord = -1
	p.cr = cr

	nulls := opts.Null
	if nulls == nil {
		nulls = []string{"", "NA"}
	}
	for _, s := range nulls {
		if strings.TrimSpace(s) == "" {
			r.nullEmpty = true
		} else {
			r.nulls = append(r.nulls, s)
		}
	}

	header, err := cr.Read()
	if err != nil {
		p.close()
		if errors.Is(err, io.EOF) {
			return nil, r.sourceErr(1, errors.New("the file is empty: a header row naming the columns is required"), "")
		}
		return nil, r.sourceErr(csvErrLine(err), fmt.Errorf("cannot read the header row: %w", unwrapCSV(err)), hintQuote)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	cr.FieldsPerRecord = len(header)
	cr.ReuseRecord = false

	need := append([]string{m.Subject.Column}, columnsOf(r.pl)...)
	idx, err := resolveColumns(need, header)
	if err != nil {
		p.close()
		line, _ := cr.FieldPos(0)
		return nil, r.sourceErr(int64(line), err, "correct the column names in the mapping or the header")
	}
	r.csvIdx = idx
	return p, nil
}

const hintQuote = `fix the quoting at the source: a field with a quote, delimiter or line break is enclosed in quotes, and a quote inside it is written twice ("")`

func columnsOf(pl *plan) []string {
	out := make([]string, len(pl.fields))
	for i, fs := range pl.fields {
		out[i] = fs.column
	}
	return out
}

// resolveColumns finds each needed column in a header: by exact name, then "#N" by position, then by
// name with surrounding spaces trimmed.
func resolveColumns(need, header []string) ([]int, error) {
	pos := map[string]int{}
	trimmed := map[string]int{}
	for i, h := range header {
		if _, dup := pos[h]; dup {
			pos[h] = -1
		} else {
			pos[h] = i
		}
		t := strings.TrimSpace(h)
		if _, dup := trimmed[t]; dup {
			trimmed[t] = -1
		} else {
			trimmed[t] = i
		}
	}
	idx := make([]int, len(need))
	for k, name := range need {
		i, ok := pos[name]
		if !ok && posColRE.MatchString(name) {
			n, _ := strconv.Atoi(name[1:])
			if n <= len(header) {
				i, ok = n-1, true
			}
		}
		if !ok {
			i, ok = trimmed[strings.TrimSpace(name)]
		}
		switch {
		case !ok:
			return nil, fmt.Errorf("column %q is not in the source (its columns: %s)", name, quoteList(header))
		case i < 0:
			return nil, fmt.Errorf("column %q appears more than once in the source: name it by position as \"#N\"", name)
		}
		idx[k] = i
	}
	return idx, nil
}

func quoteList(names []string) string {
	q := make([]string, 0, len(names))
	for i, n := range names {
		if i == 20 {
			q = append(q, fmt.Sprintf("and %d more", len(names)-20))
			break
		}
		q = append(q, strconv.Quote(n))
	}
	return strings.Join(q, ", ")
}

func csvErrLine(err error) int64 {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return int64(pe.Line)
	}
	return 0
}

func unwrapCSV(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (p *csvProducer) next(ctx context.Context, rows int) (*rawChunk, error) {
	if p.done {
		return nil, io.EOF
	}
	c := &rawChunk{first: p.row + 1, recs: make([][]string, 0, rows), lines: make([]int64, 0, rows)}
	for c.n < rows {
		if c.n&1023 == 1023 && ctx.Err() != nil {
			return c, ctx.Err()
		}
		rec, err := p.cr.Read()
		if err == io.EOF {
			p.done = true
			if derr := p.hf.drain(); derr != nil {
				return c, p.r.sourceErr(0, derr, "")
			}
			return c, io.EOF
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				p.row++
				if c.bad == nil {
					c.bad = make([]*RowError, rows)
				}
				c.bad[c.n] = &RowError{Source: p.r.pl.m.Source, File: p.r.file, Line: int64(pe.StartLine), Row: p.row,
					Rule: RuleFieldCount, Value: "",
					Message: fmt.Sprintf("the row has %d fields, the header %d", len(rec), p.cr.FieldsPerRecord),
					Hint:    hintFor(RuleFieldCount)}
				c.recs = append(c.recs, rec)
				c.lines = append(c.lines, int64(pe.StartLine))
				c.n++
				continue
			}
			p.done = true
			return c, p.r.sourceErr(csvErrLine(err), unwrapCSV(err), hintQuote)
		}
		p.row++
		line, _ := p.cr.FieldPos(0)
		c.recs = append(c.recs, rec)
		c.lines = append(c.lines, int64(line))
		c.n++
	}
	return c, nil
}

func (p *csvProducer) finish(rep *SourceReport) {
	rep.SHA256 = p.hf.sum()
	rep.Bytes = p.hf.n
}

func (p *csvProducer) close() error {
	if p.gz != nil {
		p.gz.Close()
	}
	return p.hf.f.Close()
}
