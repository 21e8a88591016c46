package connectors_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"insitu/connectors"
)

const testDSNEnv = "INSITU_TEST_POSTGRES_DSN"

// pgTable creates a table of test rows on the server named by INSITU_TEST_POSTGRES_DSN, dropped when
// the test ends. Row 3 has an invalid credit code; rows 2 and 4 have NULLs.
func pgTable(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(testDSNEnv)
	if dsn == "" {
		t.Skip(testDSNEnv + " is not set: no PostgreSQL server to test against (.ci/run starts one)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	table := fmt.Sprintf("connectors_test_%d", time.Now().UnixNano())
	_, err = conn.Exec(ctx, `CREATE TABLE `+table+` (
		seq integer PRIMARY KEY, uscc text, amount_wan numeric(12,2), cnt integer, latest date,
		outstanding boolean, grade text, company varchar(40), founded timestamp)`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP TABLE "+table) })
	_, err = conn.Exec(ctx, `INSERT INTO `+table+` VALUES
		(1, '91330100AY4CL12T8H', 1.50, 2, '2023-01-15', true, 'A', '甲公司', '2001-05-06 07:08:09'),
		(2, '913301003BJ1XG611E', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		(3, '91330100716105852G', 3.00, 1, '2022-03-01', false, 'B', '丙公司', NULL),
		(4, '91330100dd272hd197', 12.75, 0, '2024-02-29', false, 'M', NULL, '1999-12-31 23:59:59')`)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

func pgMapping(t *testing.T, query, env string) *connectors.Mapping {
	t.Helper()
	text := fmt.Sprintf(`source: pg
provider: zhejiang_tax_bureau
format: postgres
query: %q
dsn_env: %s
subject: {column: uscc, kind: uscc}
columns:
  - {column: amount_wan, field: tax_arrears_history.arrears_amount_24m, scale: 10000}
  - {column: cnt, field: tax_arrears_history.arrears_count_24m}
  - {column: latest, field: tax_arrears_history.latest_arrears_date}
  - {column: outstanding, field: tax_arrears_history.arrears_outstanding}
  - {column: grade, field: tax_arrears_history.tax_credit_grade}
  - {column: company, field: custom.company}
  - {column: founded, field: custom.founded}
custom_fields:
  - {key: company, type: string}
  - {key: founded, type: date}
`, query, env)
	p := filepath.Join(t.TempDir(), "pg.yaml")
	os.WriteFile(p, []byte(text), 0o600)
	return loadMapping(t, p)
}

func TestPostgres(t *testing.T) {
	table := pgTable(t)
	m := pgMapping(t, "SELECT * FROM "+table+" ORDER BY seq", testDSNEnv)

	_, _, err := readAll(t, m, connectors.Options{BatchRows: 2})
	var re *connectors.RowError
	if !errors.As(err, &re) || re.Row != 3 || re.Line != 0 || re.Column != "uscc" || re.Rule != "check-character" {
		t.Fatalf("error %v, want a check-character error at row 3", err)
	}
	if want := `postgres query (source pg): row 3, column "uscc": invalid uscc "91330100716105852G": check character is 'G', GB 32100 mod-31 gives 'F' (rule check-character)`; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("message %q", err)
	}

	recs, rep, err := readAll(t, m, connectors.Options{BatchRows: 2, Rejects: connectors.NewRejectBudget(1)})
	if err != nil {
		t.Fatal(err)
	}
	for col, want := range map[string]string{
		"subject_id":                              "91330100AY4CL12T8H|913301003BJ1XG611E|91330100DD272HD197",
		"tax_arrears_history.arrears_amount_24m":  "15000|<null>|127500",
		"tax_arrears_history.arrears_count_24m":   "2|<null>|0",
		"tax_arrears_history.latest_arrears_date": "2023-01-15|<null>|2024-02-29",
		"tax_arrears_history.arrears_outstanding": "true|<null>|false",
		"tax_arrears_history.tax_credit_grade":    "A|<null>|M",
		"custom.company":                          "甲公司|<null>|<null>",
		"custom.founded":                          "2001-05-06|<null>|1999-12-31",
	} {
		if got := strings.Join(column(t, recs, col), "|"); got != want {
			t.Errorf("%s: got %s, want %s", col, got, want)
		}
	}
	if rep.RowsRead != 4 || rep.RowsAccepted != 3 || rep.Path != "" || rep.SHA256 != "" || rep.Rejects[0].Row != 3 || !rep.Complete {
		t.Fatalf("report %+v", rep)
	}
	if f := rep.Fields[1]; f.Nulls != 1 || f.Valid != 3 || *f.Max != 127500 {
		t.Fatalf("amount field %+v", f)
	}

	// Missing columns, a failing query and an unset variable are source errors.
	var se *connectors.SourceError
	_, err = connectors.Open(t.Context(), pgMapping(t, "SELECT seq AS uscc FROM "+table, testDSNEnv), connectors.Options{})
	if !errors.As(err, &se) || !strings.Contains(err.Error(), `column "amount_wan" is not in the source`) {
		t.Fatalf("error %v", err)
	}
	_, err = connectors.Open(t.Context(), pgMapping(t, "SELECT * FROM no_such_table_here", testDSNEnv), connectors.Options{})
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "query failed") {
		t.Fatalf("error %v", err)
	}
	_, err = connectors.Open(t.Context(), pgMapping(t, "SELECT 1", "INSITU_TEST_UNSET_DSN_VARIABLE"), connectors.Options{})
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "environment variable INSITU_TEST_UNSET_DSN_VARIABLE is not set") {
		t.Fatalf("error %v", err)
	}
	// The query runs read-only.
	_, err = connectors.Open(t.Context(), pgMapping(t, "INSERT INTO "+table+" (seq) VALUES (99) RETURNING *", testDSNEnv), connectors.Options{})
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a write was not refused: %v", err)
	}
}

func TestPostgresCloseMidway(t *testing.T) {
	table := pgTable(t)
	m := pgMapping(t, "SELECT * FROM "+table+" ORDER BY seq", testDSNEnv)
	r, err := connectors.Open(t.Context(), m, connectors.Options{BatchRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Next(t.Context())
	if err != nil || rec.NumRows() != 1 {
		t.Fatalf("first record: %v", err)
	}
	rec.Release()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if r.Report().Complete {
		t.Fatal("a closed, unfinished read says complete")
	}
}
