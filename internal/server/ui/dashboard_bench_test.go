package ui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
	"github.com/reevehq/reeve/internal/store/postgres"
	"github.com/reevehq/reeve/internal/store/sqlite"
	"github.com/reevehq/reeve/internal/testenv"
)

// Sizes of the dashboard benchmark's store.
const (
	dashBenchRuns  = 10_000 // runs in the window
	dashBenchFlows = 20
)

// BenchmarkDashboard measures the server's render time of /ui/dashboard
// (24 h, all projects) with dashBenchRuns runs in the window, one in ten
// failed, on SQLite and PostgreSQL: the figure in docs/performance.md.
//
//	go test ./internal/server/ui/ -run '^$' -bench Dashboard -count 3
func BenchmarkDashboard(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		b.Run("store="+kind, func(b *testing.B) {
			ctx := context.Background()
			var st store.Store
			switch kind {
			case "sqlite":
				s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "reeve.db"))
				if err != nil {
					b.Fatal(err)
				}
				st = s
			case "postgres":
				s, err := postgres.Open(ctx, testenv.Postgres(b))
				if err != nil {
					b.Fatal(err)
				}
				st = s
			}
			b.Cleanup(func() { st.Close() })
			srv, admin := serverOn(b, st)
			e := envOf(b, srv, admin)
			dashBenchSeed(b, e, st)
			req, _ := http.NewRequest("GET", e.url+"/ui/dashboard", nil)
			req.AddCookie(&http.Cookie{Name: "reeve_session", Value: e.admin})
			get := func() {
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(res.Body)
				if err != nil {
					b.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `<span class="dash-n">`+fmt.Sprint(dashBenchRuns)+`</span> runs`) {
					b.Fatalf("GET /ui/dashboard = %s, want 200 counting %d runs:\n%.3000s", res.Status, dashBenchRuns, body)
				}
			}
			get() // warm up, and check the page counts every run
			b.ResetTimer()
			for b.Loop() {
				get()
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
		})
	}
}

// dashBenchSeed registers dashBenchFlows flows and writes dashBenchRuns
// runs of them straight to the store: one in ten Failed (with a
// message), the others Success.
func dashBenchSeed(b *testing.B, e *env, st store.Store) {
	b.Helper()
	ctx := context.Background()
	var versions []string
	for i := range dashBenchFlows {
		f := e.flow(fmt.Sprintf("flow-%02d", i), "")
		det, err := e.api.Flow(ctx, f.ID)
		if err != nil {
			b.Fatal(err)
		}
		versions = append(versions, det.Versions[0].ID)
	}
	start := time.Now()
	for i := range dashBenchRuns {
		s := state.State{Kind: state.Success, Time: time.Now()}
		if i%10 == 0 {
			s = state.State{Kind: state.Failed, Message: fmt.Sprintf("failure %d", i), Time: time.Now()}
		}
		if _, _, err := st.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: versions[i%len(versions)], State: s}); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d runs in %v", dashBenchRuns, time.Since(start).Round(time.Millisecond))
}
