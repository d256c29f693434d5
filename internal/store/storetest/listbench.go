package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// ListBenchRuns is the number of flow runs RunListBenchmarks seeds: the
// store of a busy server after some months.
const ListBenchRuns = 100_000

// listBenchPage is the page size of the UI's runs list.
const listBenchPage = 50

// RunListBenchmarks measures what the UI's runs list and dashboard ask of
// a store holding ListBenchRuns flow runs: the first page of runs with and
// without filters, a deep page, counts by state, and the task counts of a
// page. open must return an empty, migrated store; settle, if not nil, is
// called once after seeding (the PostgreSQL store's tests ANALYZE there,
// as autovacuum does shortly after a bulk load).
//
// The runs: 10 flows in 2 projects; 70 % Success, 10 % Failed (message
// "exit status 1: disk full on node-N"), 10 % Scheduled, 5 % Running, 5 %
// Cancelled; labels "prod" or "dev", and "gpu" on every 10th run; params
// {"day", "n" (0–99), "region" ("eu" or "us")}. The 50 newest runs have
// 10 task runs each, and one of them 5,000 more (a large map).
func RunListBenchmarks(b *testing.B, open func(b *testing.B) store.Store, settle func(b *testing.B, s store.Store)) {
	s := open(b)
	seeded := seedRunList(b, s)
	if settle != nil {
		settle(b, s)
	}
	ctx := context.Background()
	failures := []state.Kind{state.Failed, state.TimedOut, state.Cancelled}

	lists := []struct {
		name string
		f    store.FlowRunFilter
	}{
		{"List/All", store.FlowRunFilter{}},
		{"List/Page20", store.FlowRunFilter{Cursor: seeded.page20}},
		{"List/State", store.FlowRunFilter{States: []state.Kind{state.Failed}}},
		{"List/States", store.FlowRunFilter{States: failures}},
		{"List/Project", store.FlowRunFilter{ProjectID: seeded.projects[1]}},
		{"List/Flow", store.FlowRunFilter{FlowID: seeded.flows[3]}},
		{"List/ProjectAndState", store.FlowRunFilter{ProjectID: seeded.projects[0], States: []state.Kind{state.Failed}}},
		{"List/Window", store.FlowRunFilter{CreatedAfter: seeded.middle}},
		{"List/Label", store.FlowRunFilter{Labels: []string{"gpu"}}},
		{"List/Param", store.FlowRunFilter{Params: map[string]string{"n": "42"}}},
		{"List/Params", store.FlowRunFilter{Params: map[string]string{"region": "eu", "n": "42"}}},
		{"List/Text", store.FlowRunFilter{Text: "disk full"}},
		{"List/TextNowhere", store.FlowRunFilter{Text: "no run says this"}},
	}
	for _, l := range lists {
		b.Run(l.name, func(b *testing.B) {
			f := l.f
			f.Limit = listBenchPage
			for b.Loop() {
				runs, _, err := s.ListFlowRuns(ctx, f)
				if err != nil {
					b.Fatal(err)
				}
				if len(runs) == 0 && l.name != "List/TextNowhere" {
					b.Fatalf("%s: no runs", l.name)
				}
			}
		})
	}

	counts := []struct {
		name string
		f    store.FlowRunFilter
	}{
		{"Count/All", store.FlowRunFilter{}},
		{"Count/Window", store.FlowRunFilter{CreatedAfter: seeded.recent}},
		{"Count/States", store.FlowRunFilter{States: failures}},
		{"Count/Project", store.FlowRunFilter{ProjectID: seeded.projects[1]}},
		{"Count/Label", store.FlowRunFilter{Labels: []string{"gpu"}}},
		{"Count/Text", store.FlowRunFilter{Text: "disk full"}},
	}
	for _, c := range counts {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.CountFlowRunsMatching(ctx, c.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}

	b.Run("CountTaskRuns", func(b *testing.B) {
		for b.Loop() {
			counts, err := s.CountTaskRuns(ctx, seeded.newest)
			if err != nil {
				b.Fatal(err)
			}
			if len(counts) != len(seeded.newest) {
				b.Fatalf("task counts of %d runs, want %d", len(counts), len(seeded.newest))
			}
		}
	})
}

// runList is what seedRunList made.
type runList struct {
	projects, flows []string  // IDs
	newest          []string  // the IDs of the listBenchPage newest runs
	page20          string    // the cursor of the 20th page of 50
	middle          time.Time // half of the runs were created after it
	recent          time.Time // a tenth of the runs were created after it
}

func seedRunList(b *testing.B, s store.Store) runList {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	var out runList
	var versions []store.FlowVersion
	for p := range 2 {
		proj := createProject(b, s, fmt.Sprintf("bench-%d", p))
		out.projects = append(out.projects, proj.ID)
		for f := range 5 {
			v := register(b, s, registration(proj.Name, fmt.Sprintf("flow-%d", f), "h"))
			versions = append(versions, v)
			out.flows = append(out.flows, v.FlowID)
		}
	}
	mk := func(i int) store.FlowRun {
		r := store.FlowRun{
			FlowVersionID: versions[i%len(versions)].ID,
			Name:          fmt.Sprintf("run-%d", i),
			Params: json.RawMessage(fmt.Sprintf(`{"day": "2026-%02d-%02d", "n": %d, "region": %q}`,
				1+i/3000%12, 1+i%28, i%100, [2]string{"eu", "us"}[i/7%2])),
			Labels: []string{[2]string{"prod", "dev"}[i%2]},
		}
		if i%10 == 0 {
			r.Labels = append(r.Labels, "gpu")
		}
		switch i % 20 {
		case 0, 1:
			r.State = state.State{Kind: state.Failed, Message: fmt.Sprintf("exit status 1: disk full on node-%d", i%7)}
		case 2, 3:
			r.State = state.State{Kind: state.Scheduled}
		case 4:
			r.State = state.State{Kind: state.Running}
		case 5:
			r.State = state.State{Kind: state.Cancelled, Message: "cancelled by a developer token"}
		default:
			r.State = state.State{Kind: state.Success}
		}
		return r
	}
	create := func(from, to int) {
		const workers = 8
		var (
			wg   sync.WaitGroup
			errs = make([]error, workers)
		)
		for w := range workers {
			wg.Go(func() {
				for i := from + w; i < to; i += workers {
					if _, _, err := s.CreateFlowRun(ctx, mk(i)); err != nil {
						errs[w] = fmt.Errorf("seed run %d: %w", i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	create(0, ListBenchRuns/2)
	out.middle = boundary()
	create(ListBenchRuns/2, ListBenchRuns*9/10)
	out.recent = boundary()
	create(ListBenchRuns*9/10, ListBenchRuns)

	runs, _, err := s.ListFlowRuns(ctx, store.FlowRunFilter{Limit: listBenchPage})
	requireNoError(b, err, "ListFlowRuns")
	kinds := []state.Kind{state.Success, state.Success, state.Success, state.Failed, state.Running,
		state.Pending, state.Pending, state.Skipped, state.Cached, state.Success}
	for i, r := range runs {
		out.newest = append(out.newest, r.ID)
		writes := make([]store.TaskRunWrite, 0, len(kinds))
		for j, k := range kinds {
			key := fmt.Sprintf("task-%d", j)
			writes = append(writes, store.TaskRunWrite{Key: key, Task: key, State: state.State{Kind: k}})
		}
		writeTasks(b, s, r.ID, writes...)
		if i == 7 {
			writes = writes[:0]
			for j := range 5000 {
				writes = append(writes, store.TaskRunWrite{Key: fmt.Sprintf("map[%d]", j), Task: "map", MapIndex: j,
					State: state.State{Kind: kinds[j%len(kinds)]}})
			}
			writeTasks(b, s, r.ID, writes...)
		}
	}
	f := store.FlowRunFilter{Limit: listBenchPage}
	for range 19 {
		_, next, err := s.ListFlowRuns(ctx, f)
		requireNoError(b, err, "ListFlowRuns (paging)")
		f.Cursor = next
	}
	out.page20 = f.Cursor
	b.Logf("seeded %d flow runs in %v", ListBenchRuns, time.Since(start).Round(time.Millisecond))
	return out
}
