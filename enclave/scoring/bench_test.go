package scoring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"insitu/enclave/api"
	"insitu/enclave/api/client"
	"insitu/enclave/keys"
	"insitu/enclave/scoring"
)

// The benchmark's client runs in a second process: the test binary started again with clientEnv
// set, which TestMain hands to benchClient.
const clientEnv = "INSITU_SCORE_BENCH_CLIENT"

func TestMain(m *testing.M) {
	if os.Getenv(clientEnv) != "" {
		os.Exit(benchClient())
	}
	os.Exit(m.Run())
}

// clientJob is what the parent tells the client process.
type clientJob struct {
	URL, Fingerprint, KeyFile, Model string
	Subjects                         []string
	Requests, Batch, Clients         int
}

// clientStats is what the client process reports.
type clientStats struct {
	Requests, Scores, Errors int
	Seconds                  float64
	P50, P99                 float64 // milliseconds
	FirstError               string
}

func benchClient() int {
	var job clientJob
	if err := json.Unmarshal([]byte(os.Getenv(clientEnv)), &job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kd, err := os.ReadFile(job.KeyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	id, err := keys.ParsePartyFile(kd, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := client.New(client.Config{URL: job.URL, Fingerprint: job.Fingerprint, Identity: id})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	ctx := context.Background()
	// Warm up: the TLS connection and the server's feature table.
	if _, err := c.Score(ctx, scoring.ScoreRequest{Model: job.Model, Subjects: job.Subjects[:1]}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var next atomic.Int64
	var mu sync.Mutex
	var lat []float64
	st := clientStats{}
	var wg sync.WaitGroup
	start := time.Now()
	for range job.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []float64
			for {
				k := int(next.Add(1)) - 1
				if k >= job.Requests {
					break
				}
				off := (k * job.Batch) % (len(job.Subjects) - job.Batch + 1)
				t0 := time.Now()
				res, err := c.Score(ctx, scoring.ScoreRequest{Model: job.Model, Purpose: purpose, Subjects: job.Subjects[off : off+job.Batch]})
				mine = append(mine, float64(time.Since(t0).Microseconds())/1e3)
				mu.Lock()
				st.Requests++
				if err != nil {
					st.Errors++
					if st.FirstError == "" {
						st.FirstError = err.Error()
					}
				} else {
					for _, r := range res.Results {
						if r.Refused == "" {
							st.Scores++
						}
					}
				}
				mu.Unlock()
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	st.Seconds = time.Since(start).Seconds()
	slices.Sort(lat)
	if len(lat) > 0 {
		st.P50, st.P99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	}
	if err := json.NewEncoder(os.Stdout).Encode(st); err != nil {
		return 1
	}
	return 0
}

// BenchmarkServeScore measures online scoring over HTTPS on loopback: a client process signs each
// request (ML-DSA-65) and sends it over TLS 1.3 to the API server, which authenticates it, checks
// every subject's authorization, scores, and makes the request's audit record durable before
// answering — with group commit of the audit records (group=on) or one transaction per request
// (group=off). b.N is the number of requests; batch the subjects per request, clients the
// concurrent requests in flight. It reports requests/s, scores/s and the client's p50 and p99
// latency in milliseconds.
func BenchmarkServeScore(b *testing.B) {
	f := newFixture(b, 1200, scoring.Options{})
	f.bulkAuthorize(b, 1000)
	dir := b.TempDir()
	bank, err := keys.NewIdentity(keys.RoleBank, bankT)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.e.Jobs.AddParty(ctx, "bench", bank.Public()); err != nil {
		b.Fatal(err)
	}
	kd, err := bank.MarshalPartyFile(nil)
	if err != nil {
		b.Fatal(err)
	}
	keyFile := filepath.Join(dir, "bank.key")
	if err := os.WriteFile(keyFile, kd, 0o600); err != nil {
		b.Fatal(err)
	}
	cert, fp, err := api.LoadOrCreateCert(f.e.Dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, group := range []bool{true, false} {
		srv := api.New(f.e, api.Options{Scoring: scoring.Options{NoGroupCommit: !group, ScoreRate: 1e9, ScoreBurst: 1e9, MaxBatch: 1000}})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		sctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(sctx, ln, cert, 5*time.Second) }()
		for _, c := range []struct{ batch, clients int }{{1, 1}, {1, 16}, {100, 8}} {
			name := fmt.Sprintf("group=%s/batch=%d/clients=%d", map[bool]string{true: "on", false: "off"}[group], c.batch, c.clients)
			b.Run(name, func(b *testing.B) {
				job := clientJob{URL: "https://" + ln.Addr().String(), Fingerprint: fp, KeyFile: keyFile, Model: f.model.ID,
					Subjects: f.subjects[:1000], Requests: b.N, Batch: c.batch, Clients: c.clients}
				env, _ := json.Marshal(job)
				cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
				cmd.Env = append(os.Environ(), clientEnv+"="+string(env))
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				b.ResetTimer()
				if err := cmd.Run(); err != nil {
					b.Fatalf("client: %v: %s", err, errb.String())
				}
				b.StopTimer()
				var st clientStats
				if err := json.Unmarshal(out.Bytes(), &st); err != nil {
					b.Fatalf("client output %q: %v", out.String(), err)
				}
				if st.Errors > 0 {
					b.Fatalf("%d of %d requests failed: %s", st.Errors, st.Requests, st.FirstError)
				}
				b.ReportMetric(float64(st.Requests)/st.Seconds, "req/s")
				b.ReportMetric(float64(st.Scores)/st.Seconds, "scores/s")
				b.ReportMetric(st.P50, "p50-ms")
				b.ReportMetric(st.P99, "p99-ms")
			})
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

// bulkAuthorize imports authorizations of bank-t for the model's items for the first n subjects
// in one file.
func (f *fixture) bulkAuthorize(b *testing.B, n int) {
	var sb strings.Builder
	sb.WriteString("id_type,id,grantee,purpose,purpose_detail,items,valid_from,valid_until,evidence\n")
	for i, s := range f.subjects[:n] {
		sb.WriteString(strings.Join([]string{"uscc", s, bankT, string(purpose), "benchmark", strings.Join(f.model.Items, ";"),
			"2020-01-01", "2099-12-31", "bench-" + strconv.Itoa(i) + ".pdf#sha256=" + fmt.Sprintf("%064x", 1<<20+i)}, ",") + "\n")
	}
	if _, err := f.e.Consent.Import(ctx, "steward-1", "bench.csv", strings.NewReader(sb.String())); err != nil {
		b.Fatal(err)
	}
}
