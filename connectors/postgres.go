package connectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

type pgProducer struct {
	r    *reader
	conn *pgx.Conn
	tx   pgx.Tx
	rows pgx.Rows
	idx  []int
	row  int64
	done bool
}

// openPostgres connects with the DSN from the mapping's environment variable, starts a read-only
// transaction and runs the mapping's query; rows stream as the server sends them.
func openPostgres(ctx context.Context, r *reader) (producer, error) {
	m := r.pl.m
	env := m.DSNEnv
	if env == "" {
		env = DefaultDSNEnv
	}
	dsn := os.Getenv(env)
	if dsn == "" {
		return nil, r.sourceErr(0, fmt.Errorf("environment variable %s is not set", env),
			"set it to the PostgreSQL connection string (e.g. postgres://user@host:5432/db), or name another variable in dsn_env")
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		// pgx's message may carry the DSN's host and user but never its password.
		return nil, r.sourceErr(0, fmt.Errorf("cannot connect with the DSN in %s: %w", env, err), "check the server and the connection string")
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, r.sourceErr(0, err, "")
	}
	rows, err := tx.Query(ctx, m.Query)
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		if rows != nil {
			rows.Close()
		}
		tx.Rollback(context.WithoutCancel(ctx))
		conn.Close(context.WithoutCancel(ctx))
		return nil, r.sourceErr(0, fmt.Errorf("query failed: %w", err), "correct the query in the mapping")
	}
	fds := rows.FieldDescriptions()
	if len(fds) == 0 {
		// pgx reports some failures (e.g. a write in the read-only transaction) only once rows are read.
		rows.Next()
		err := rows.Err()
		if err == nil {
			err = errors.New("the query returns no columns")
		}
		rows.Close()
		tx.Rollback(context.WithoutCancel(ctx))
		conn.Close(context.WithoutCancel(ctx))
		return nil, r.sourceErr(0, fmt.Errorf("query failed: %w", err), "correct the query in the mapping")
	}
	names := make([]string, len(fds))
	for i, fd := range fds {
		names[i] = fd.Name
	}
	need := append([]string{m.Subject.Column}, columnsOf(r.pl)...)
	idx, err := resolveColumns(need, names)
	if err != nil {
		rows.Close()
		tx.Rollback(context.WithoutCancel(ctx))
		conn.Close(context.WithoutCancel(ctx))
		return nil, r.sourceErr(0, err, "correct the column names in the mapping or select them in the query")
	}
	return &pgProducer{r: r, conn: conn, tx: tx, rows: rows, idx: idx}, nil
}

func (p *pgProducer) next(ctx context.Context, n int) (*rawChunk, error) {
	if p.done {
		return nil, io.EOF
	}
	cols := make([][]cell, len(p.idx))
	for k := range cols {
		cols[k] = make([]cell, 0, n)
	}
	c := &rawChunk{first: p.row + 1}
	for c.n < n {
		if !p.rows.Next() {
			p.done = true
			err := p.rows.Err()
			p.rows.Close()
			if err == nil {
				err = p.rows.Err()
			}
			c.get = getters(cols)
			if err != nil {
				return c, p.r.sourceErr(0, fmt.Errorf("after row %d: %w", p.row, err), "")
			}
			return c, io.EOF
		}
		vals, err := p.rows.Values()
		if err != nil {
			p.done = true
			c.get = getters(cols)
			return c, p.r.sourceErr(0, fmt.Errorf("row %d: %w", p.row+1, err), "")
		}
		p.row++
		for k, i := range p.idx {
			cols[k] = append(cols[k], pgCell(vals[i]))
		}
		c.n++
	}
	c.get = getters(cols)
	return c, nil
}

func getters(cols [][]cell) []func(int) cell {
	g := make([]func(int) cell, len(cols))
	for k, col := range cols {
		g[k] = func(i int) cell { return col[i] }
	}
	return g
}

// pgCell turns a value decoded by pgx into a cell.
func pgCell(v any) cell {
	switch x := v.(type) {
	case nil:
		return cell{}
	case string:
		return cell{k: cString, s: x}
	case []byte:
		return cell{k: cString, s: string(x)}
	case bool:
		return cell{k: cBool, b: x}
	case int16:
		return cell{k: cInt, i: int64(x)}
	case int32:
		return cell{k: cInt, i: int64(x)}
	case int64:
		return cell{k: cInt, i: x}
	case float32:
		return cell{k: cFloat, f: float64(x)}
	case float64:
		return cell{k: cFloat, f: x}
	case time.Time:
		y, m, d := x.Date()
		return cell{k: cDate, i: int64(daysFromCivil(y, int(m), d))}
	case pgtype.Numeric:
		if !x.Valid {
			return cell{}
		}
		if x.NaN || x.InfinityModifier != pgtype.Finite {
			return cell{k: cFloat, f: nanOrInf(x)}
		}
		if x.Exp == 0 && x.Int.IsInt64() {
			return cell{k: cInt, i: x.Int.Int64()}
		}
		f, err := x.Float64Value()
		if err != nil || !f.Valid {
			return cell{k: cString, s: fmt.Sprint(v)}
		}
		return cell{k: cFloat, f: f.Float64}
	case [16]byte: // uuid
		return cell{k: cString, s: fmt.Sprintf("%x-%x-%x-%x-%x", x[0:4], x[4:6], x[6:8], x[8:10], x[10:16])}
	case fmt.Stringer:
		return cell{k: cString, s: x.String()}
	}
	return cell{k: cString, s: fmt.Sprint(v)}
}

func nanOrInf(x pgtype.Numeric) float64 {
	switch {
	case x.NaN:
		return math.NaN()
	case x.InfinityModifier == pgtype.Infinity:
		return math.Inf(1)
	}
	return math.Inf(-1)
}

func (p *pgProducer) finish(*SourceReport) {}

func (p *pgProducer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.rows.Close()
	err := p.tx.Rollback(ctx) // read only: nothing to keep
	if errors.Is(err, pgx.ErrTxClosed) {
		err = nil
	}
	if cerr := p.conn.Close(ctx); err == nil {
		err = cerr
	}
	return err
}
