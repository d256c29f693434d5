package storetest

import (
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

func testListFlowRuns(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		runs, next, err := s.ListFlowRuns(t.Context(), store.FlowRunFilter{})
		requireNoError(t, err, "ListFlowRuns")
		if len(runs) != 0 || next != "" {
			t.Errorf("ListFlowRuns on an empty store = %d runs, next %q; want none", len(runs), next)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		pa := createProject(t, s, "a")
		pb := createProject(t, s, "b")
		a1 := register(t, s, registration("a", "one", "h"))
		a2 := register(t, s, registration("a", "two", "h"))
		b1 := register(t, s, registration("b", "one", "h"))

		// Three generations of runs, separated by time boundaries.
		mk := func(v store.FlowVersion, k state.Kind) string {
			t.Helper()
			r := createRun(t, s, store.FlowRun{FlowVersionID: v.ID})
			if k != state.Scheduled {
				_, err := s.SetFlowRunState(ctx, r.ID, 1, state.State{Kind: k})
				requireNoError(t, err, "SetFlowRunState")
			}
			return r.ID
		}
		g1 := []string{mk(a1, state.Scheduled), mk(a2, state.Running), mk(b1, state.Failed)}
		t1 := boundary()
		g2 := []string{mk(a1, state.Running), mk(a1, state.Success), mk(b1, state.Scheduled)}
		t2 := boundary()
		g3 := []string{mk(a2, state.Failed), mk(b1, state.Running)}
		all := slices.Concat(g1, g2, g3)

		cases := []struct {
			name string
			f    store.FlowRunFilter
			want []string
		}{
			{"All", store.FlowRunFilter{}, all},
			{"Project", store.FlowRunFilter{ProjectID: pa.ID}, []string{g1[0], g1[1], g2[0], g2[1], g3[0]}},
			{"OtherProject", store.FlowRunFilter{ProjectID: pb.ID}, []string{g1[2], g2[2], g3[1]}},
			{"Flow", store.FlowRunFilter{FlowID: a1.FlowID}, []string{g1[0], g2[0], g2[1]}},
			{"ProjectAndFlow", store.FlowRunFilter{ProjectID: pa.ID, FlowID: a2.FlowID}, []string{g1[1], g3[0]}},
			{"FlowOfOtherProject", store.FlowRunFilter{ProjectID: pb.ID, FlowID: a2.FlowID}, nil},
			{"OneState", store.FlowRunFilter{States: []state.Kind{state.Running}}, []string{g1[1], g2[0], g3[1]}},
			{"States", store.FlowRunFilter{States: []state.Kind{state.Failed, state.Success}}, []string{g1[2], g2[1], g3[0]}},
			{"StateNoRunIsIn", store.FlowRunFilter{States: []state.Kind{state.Cancelled}}, nil},
			{"ProjectAndStates", store.FlowRunFilter{ProjectID: pb.ID, States: []state.Kind{state.Running, state.Scheduled}},
				[]string{g2[2], g3[1]}},
			{"CreatedAfter", store.FlowRunFilter{CreatedAfter: t1}, slices.Concat(g2, g3)},
			{"CreatedBefore", store.FlowRunFilter{CreatedBefore: t1}, g1},
			{"CreatedBetween", store.FlowRunFilter{CreatedAfter: t1, CreatedBefore: t2}, g2},
			{"CreatedBetweenInFlow", store.FlowRunFilter{CreatedAfter: t1, CreatedBefore: t2, FlowID: a1.FlowID},
				[]string{g2[0], g2[1]}},
			{"CreatedAfterAndState", store.FlowRunFilter{CreatedAfter: t2, States: []state.Kind{state.Running}},
				[]string{g3[1]}},
		}
		for _, c := range cases {
			runs, next, err := s.ListFlowRuns(ctx, c.f)
			requireNoError(t, err, "%s: ListFlowRuns", c.name)
			if next != "" {
				t.Errorf("%s: next = %q on the only page, want \"\"", c.name, next)
			}
			requireSameIDs(t, c.name, runIDs(runs), c.want)
			requireNewestFirst(t, runs)
		}
	})

	t.Run("ScheduledBefore", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		p := createProject(t, s, "etl")
		v := register(t, s, registration("etl", "a", "h"))
		now := time.Now().UTC().Truncate(time.Second)
		mk := func(at time.Time, k state.Kind) string {
			t.Helper()
			r := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, ScheduledAt: at})
			if k != state.Scheduled {
				_, err := s.SetFlowRunState(ctx, r.ID, 1, state.State{Kind: k})
				requireNoError(t, err, "SetFlowRunState")
			}
			return r.ID
		}
		// An overdue run first, then a schedule's runs ahead of time.
		overdue := mk(now.Add(-time.Hour), state.Scheduled)
		started := mk(now.Add(-30*time.Minute), state.Running)
		var future []string
		for i := range 5 {
			future = append(future, mk(now.Add(time.Duration(i+1)*time.Hour), state.Scheduled))
		}
		scheduled := []state.Kind{state.Scheduled}
		cases := []struct {
			name string
			f    store.FlowRunFilter
			want []string
		}{
			{"Due", store.FlowRunFilter{ScheduledBefore: now}, []string{overdue, started}},
			{"DueScheduled", store.FlowRunFilter{ScheduledBefore: now, States: scheduled}, []string{overdue}},
			{"DueScheduledInProject", store.FlowRunFilter{ProjectID: p.ID, ScheduledBefore: now, States: scheduled},
				[]string{overdue}},
			{"Exclusive", store.FlowRunFilter{ScheduledBefore: now.Add(-time.Hour), States: scheduled}, nil},
			{"SomeFuture", store.FlowRunFilter{ScheduledBefore: now.Add(150 * time.Minute), States: scheduled},
				[]string{overdue, future[0], future[1]}},
			{"ScheduledAndCreated", store.FlowRunFilter{ScheduledBefore: now.Add(3 * time.Hour), CreatedBefore: time.Now().Add(time.Hour),
				States: []state.Kind{state.Scheduled, state.Running}}, []string{overdue, started, future[0], future[1]}},
		}
		for _, c := range cases {
			runs, next, err := s.ListFlowRuns(ctx, c.f)
			requireNoError(t, err, "%s: ListFlowRuns", c.name)
			if next != "" {
				t.Errorf("%s: next = %q on the only page, want \"\"", c.name, next)
			}
			requireSameIDs(t, c.name, runIDs(runs), c.want)
			requireNewestFirst(t, runs)
			counts, err := s.CountFlowRunsMatching(ctx, c.f)
			requireNoError(t, err, "%s: CountFlowRunsMatching", c.name)
			var n int64
			for _, k := range counts {
				n += k
			}
			if n != int64(len(c.want)) {
				t.Errorf("%s: CountFlowRunsMatching = %v, want %d runs", c.name, counts, len(c.want))
			}
		}
		// A page of one still finds the overdue run behind the future ones.
		runs, _, err := s.ListFlowRuns(ctx, store.FlowRunFilter{ScheduledBefore: now, States: scheduled, Limit: 1})
		requireNoError(t, err, "ListFlowRuns, a page of one")
		requireSameIDs(t, "PageOfOne", runIDs(runs), []string{overdue})
	})

	t.Run("NewestFirst", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		want := []string{f.run.ID}
		for range 3 {
			boundary()
			want = append(want, createRun(t, s, store.FlowRun{FlowVersionID: f.version.ID}).ID)
		}
		slices.Reverse(want)
		runs, _, err := s.ListFlowRuns(t.Context(), store.FlowRunFilter{})
		requireNoError(t, err, "ListFlowRuns")
		if got := runIDs(runs); !slices.Equal(got, want) {
			t.Errorf("ListFlowRuns = %v, want newest first %v", got, want)
		}
	})

	t.Run("Paging", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		va := register(t, s, registration("etl", "a", "h"))
		vb := register(t, s, registration("etl", "b", "h"))
		var want []string
		for i := range 25 {
			want = append(want, createRun(t, s, store.FlowRun{FlowVersionID: va.ID}).ID)
			if i%5 == 0 {
				createRun(t, s, store.FlowRun{FlowVersionID: vb.ID}) // not in flow a's pages
			}
		}

		unpaged, next, err := s.ListFlowRuns(ctx, store.FlowRunFilter{FlowID: va.FlowID, Limit: 100})
		requireNoError(t, err, "ListFlowRuns unpaged")
		if next != "" || len(unpaged) != 25 {
			t.Fatalf("one page of 100: %d runs, next %q; want 25 and \"\"", len(unpaged), next)
		}

		var (
			got    []store.FlowRun
			sizes  []int
			cursor string
		)
		for page := 0; ; page++ {
			if page > 5 {
				t.Fatalf("paging did not end after %d pages", page)
			}
			runs, next, err := s.ListFlowRuns(ctx, store.FlowRunFilter{FlowID: va.FlowID, Limit: 10, Cursor: cursor})
			requireNoError(t, err, "ListFlowRuns page %d", page)
			got = append(got, runs...)
			sizes = append(sizes, len(runs))
			if next == "" {
				break
			}
			cursor = next
		}
		if want := []int{10, 10, 5}; !slices.Equal(sizes, want) {
			t.Errorf("page sizes = %v, want %v", sizes, want)
		}
		// The pages, put together, are the unpaged list: no run twice,
		// none missing, in the same order.
		if g, u := runIDs(got), runIDs(unpaged); !slices.Equal(g, u) {
			t.Errorf("pages = %v, want the unpaged list %v", g, u)
		}
		requireSameIDs(t, "pages", runIDs(got), want)
		requireNewestFirst(t, got)
	})

	t.Run("PagingExactMultiple", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "a", "h"))
		for range 20 {
			createRun(t, s, store.FlowRun{FlowVersionID: v.ID})
		}
		first, next, err := s.ListFlowRuns(ctx, store.FlowRunFilter{Limit: 10})
		requireNoError(t, err, "first page")
		if len(first) != 10 || next == "" {
			t.Fatalf("first page: %d runs, next %q; want 10 and a cursor", len(first), next)
		}
		second, next, err := s.ListFlowRuns(ctx, store.FlowRunFilter{Limit: 10, Cursor: next})
		requireNoError(t, err, "second page")
		if len(second) != 10 || next != "" {
			t.Errorf("last page: %d runs, next %q; want 10 and \"\" (no empty page after it)", len(second), next)
		}
		seen := make(map[string]bool)
		for _, id := range runIDs(slices.Concat(first, second)) {
			if seen[id] {
				t.Errorf("run %s is on both pages", id)
			}
			seen[id] = true
		}
	})

	t.Run("DefaultLimit", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "a", "h"))
		for range 103 {
			createRun(t, s, store.FlowRun{FlowVersionID: v.ID})
		}
		runs, next, err := s.ListFlowRuns(t.Context(), store.FlowRunFilter{})
		requireNoError(t, err, "ListFlowRuns")
		if len(runs) != 100 || next == "" {
			t.Errorf("limit 0: %d runs, next %q; want 100 and a cursor", len(runs), next)
		}
		rest, next, err := s.ListFlowRuns(t.Context(), store.FlowRunFilter{Cursor: next})
		requireNoError(t, err, "ListFlowRuns page 2")
		if len(rest) != 3 || next != "" {
			t.Errorf("page 2: %d runs, next %q; want 3 and \"\"", len(rest), next)
		}
	})

	t.Run("MalformedCursorIsInvalid", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		seed(t, s, "etl")
		for _, c := range []string{"%%%not base64", base64.RawURLEncoding.EncodeToString([]byte("garbage")), "x"} {
			_, _, err := s.ListFlowRuns(t.Context(), store.FlowRunFilter{Cursor: c})
			requireErrorIs(t, err, reeve.ErrInvalid, "cursor")
		}
	})
}
