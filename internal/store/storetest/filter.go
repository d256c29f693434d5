package storetest

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// testRunFilters checks the filters the UI's runs list adds (labels,
// parameter values, text), CountFlowRunsMatching and CountTaskRuns.
func testRunFilters(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("LabelsParamsText", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "load", "h"))
		w := register(t, s, registration("etl", "other", "h"))

		mk := func(v store.FlowVersion, name, params string, labels []string, st state.State) store.FlowRun {
			t.Helper()
			r := store.FlowRun{FlowVersionID: v.ID, Name: name, Labels: labels}
			if params != "" {
				r.Params = json.RawMessage(params)
			}
			run := createRun(t, s, r)
			if st.Kind != state.Scheduled {
				var err error
				run, err = s.SetFlowRunState(ctx, run.ID, 1, st)
				requireNoError(t, err, "SetFlowRunState")
			}
			return run
		}
		r1 := mk(v, "nightly-load", `{"region": "eu", "n": 3, "ok": true, "tags": ["a", "b"]}`, []string{"gpu", "prod"},
			state.State{Kind: state.Failed, Message: "Disk FULL on /data"})
		r2 := mk(v, "Hourly", `{"region": "us", "n": "3"}`, []string{"prod"}, state.State{Kind: state.Running})
		r3 := mk(w, "", "", nil, state.State{Kind: state.Scheduled})
		r4 := mk(w, "weird", `{"region": "eu", "x": null, "f": 1.5, "key with.dot": "v", "say \"hi\"": 1, "ok": false}`, []string{"gpu"},
			state.State{Kind: state.Success, Message: "ok"})
		id3 := r3.ID[len(r3.ID)-12:]

		cases := []struct {
			name string
			f    store.FlowRunFilter
			want []store.FlowRun
		}{
			{"NoFilter", store.FlowRunFilter{}, []store.FlowRun{r1, r2, r3, r4}},
			{"Label", store.FlowRunFilter{Labels: []string{"prod"}}, []store.FlowRun{r1, r2}},
			{"OtherLabel", store.FlowRunFilter{Labels: []string{"gpu"}}, []store.FlowRun{r1, r4}},
			{"EveryLabel", store.FlowRunFilter{Labels: []string{"gpu", "prod"}}, []store.FlowRun{r1}},
			{"LabelNoRunHas", store.FlowRunFilter{Labels: []string{"prod", "arm"}}, nil},
			{"LabelCaseMatters", store.FlowRunFilter{Labels: []string{"PROD"}}, nil},
			{"ParamString", store.FlowRunFilter{Params: map[string]string{"region": "eu"}}, []store.FlowRun{r1, r4}},
			{"ParamStringIsItsText", store.FlowRunFilter{Params: map[string]string{"region": `"eu"`}}, nil},
			{"ParamStringCaseMatters", store.FlowRunFilter{Params: map[string]string{"region": "EU"}}, nil},
			{"ParamNumberAndNumericString", store.FlowRunFilter{Params: map[string]string{"n": "3"}}, []store.FlowRun{r1, r2}},
			{"ParamTrue", store.FlowRunFilter{Params: map[string]string{"ok": "true"}}, []store.FlowRun{r1}},
			{"ParamFalse", store.FlowRunFilter{Params: map[string]string{"ok": "false"}}, []store.FlowRun{r4}},
			{"ParamFloat", store.FlowRunFilter{Params: map[string]string{"f": "1.5"}}, []store.FlowRun{r4}},
			{"ParamNull", store.FlowRunFilter{Params: map[string]string{"x": "null"}}, []store.FlowRun{r4}},
			{"ParamArray", store.FlowRunFilter{Params: map[string]string{"tags": `["a","b"]`}}, []store.FlowRun{r1}},
			{"ParamNameWithDot", store.FlowRunFilter{Params: map[string]string{"key with.dot": "v"}}, []store.FlowRun{r4}},
			{"ParamNameWithQuotes", store.FlowRunFilter{Params: map[string]string{`say "hi"`: "1"}}, []store.FlowRun{r4}},
			{"ParamMissing", store.FlowRunFilter{Params: map[string]string{"nope": "1"}}, nil},
			{"ParamsAll", store.FlowRunFilter{Params: map[string]string{"region": "eu", "ok": "true"}}, []store.FlowRun{r1}},
			{"TextInName", store.FlowRunFilter{Text: "load"}, []store.FlowRun{r1}},
			{"TextIgnoresCase", store.FlowRunFilter{Text: "NIGHTLY"}, []store.FlowRun{r1}},
			{"TextInNameUpper", store.FlowRunFilter{Text: "hour"}, []store.FlowRun{r2}},
			{"TextInMessage", store.FlowRunFilter{Text: "disk full"}, []store.FlowRun{r1}},
			{"TextInID", store.FlowRunFilter{Text: id3}, []store.FlowRun{r3}},
			{"TextIsNoPattern", store.FlowRunFilter{Text: "%"}, nil},
			{"TextUnderscoreIsNoPattern", store.FlowRunFilter{Text: "nightly_load"}, nil},
			{"TextNowhere", store.FlowRunFilter{Text: "zebra"}, nil},
			{"StateAndLabel", store.FlowRunFilter{States: []state.Kind{state.Running}, Labels: []string{"prod"}}, []store.FlowRun{r2}},
			{"FlowAndParam", store.FlowRunFilter{FlowID: w.FlowID, Params: map[string]string{"region": "eu"}}, []store.FlowRun{r4}},
			{"TextAndParam", store.FlowRunFilter{Text: "o", Params: map[string]string{"region": "us"}}, []store.FlowRun{r2}},
		}
		for _, c := range cases {
			runs, next, err := s.ListFlowRuns(ctx, c.f)
			requireNoError(t, err, "%s: ListFlowRuns", c.name)
			if next != "" {
				t.Errorf("%s: next = %q on the only page, want \"\"", c.name, next)
			}
			requireSameIDs(t, c.name, runIDs(runs), runIDs(c.want))
			requireNewestFirst(t, runs)

			// The counts are those of the same runs; the page is ignored.
			f := c.f
			f.Limit, f.Cursor = 1, "ignored"
			got, err := s.CountFlowRunsMatching(ctx, f)
			requireNoError(t, err, "%s: CountFlowRunsMatching", c.name)
			want := map[state.Kind]int64{}
			for _, r := range c.want {
				want[r.State.Kind]++
			}
			if !maps.Equal(got, want) {
				t.Errorf("%s: CountFlowRunsMatching = %v, want %v", c.name, got, want)
			}
		}
	})

	t.Run("TextBeyondASCII", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "load", "h"))
		uber := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, Name: "Über-load"})
		msg := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, Name: "plain"})
		msg, err := s.SetFlowRunState(ctx, msg.ID, 1, state.State{Kind: state.Failed, Message: "Größe zu hoch"})
		requireNoError(t, err, "SetFlowRunState")
		createRun(t, s, store.FlowRun{FlowVersionID: v.ID, Name: "uber-lad"})

		cases := []struct {
			name string
			text string
			want []store.FlowRun
		}{
			{"SameCase", "Über", []store.FlowRun{uber}},
			{"ASCIIPart", "ber-lo", []store.FlowRun{uber}},
			{"ASCIIPartOtherCase", "BER-LO", []store.FlowRun{uber}},
			{"WholeName", "Über-load", []store.FlowRun{uber}},
			{"InMessage", "Größe", []store.FlowRun{msg}},
			{"InMessageLower", "öße zu", []store.FlowRun{msg}},
			{"NotTheASCIILetter", "Über-la", nil},
		}
		for _, c := range cases {
			runs, _, err := s.ListFlowRuns(ctx, store.FlowRunFilter{Text: c.text})
			requireNoError(t, err, "%s: ListFlowRuns", c.name)
			requireSameIDs(t, c.name, runIDs(runs), runIDs(c.want))
			counts, err := s.CountFlowRunsMatching(ctx, store.FlowRunFilter{Text: c.text})
			requireNoError(t, err, "%s: CountFlowRunsMatching", c.name)
			want := map[state.Kind]int64{}
			for _, r := range c.want {
				want[r.State.Kind]++
			}
			if !maps.Equal(counts, want) {
				t.Errorf("%s: CountFlowRunsMatching = %v, want %v", c.name, counts, want)
			}
		}

		// Folding letters beyond ASCII is the store's (FlowRunFilter.Text):
		// SQLite folds as Go does; PostgreSQL with ICU alike, without it
		// as the database's collation does (not at all under the C
		// locale). Either way "über" selects only "Über-load" or none.
		runs, _, err := s.ListFlowRuns(ctx, store.FlowRunFilter{Text: "über"})
		requireNoError(t, err, "ListFlowRuns über")
		if len(runs) > 0 {
			requireSameIDs(t, "OtherCase", runIDs(runs), []string{uber.ID})
		} else {
			t.Logf("this store does not fold Ü to ü (a PostgreSQL without ICU)")
		}
	})

	t.Run("PagingWithFilter", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "load", "h"))
		var want []string
		for i := range 24 {
			r := store.FlowRun{FlowVersionID: v.ID, Params: json.RawMessage(`{"day": "mon"}`)}
			if i%2 == 0 {
				r.Labels = []string{"batch"}
				r.Params = json.RawMessage(`{"day": "tue"}`)
			}
			run := createRun(t, s, r)
			if i%2 == 0 {
				want = append(want, run.ID)
			}
		}
		f := store.FlowRunFilter{Labels: []string{"batch"}, Params: map[string]string{"day": "tue"}, Limit: 5}
		var got []store.FlowRun
		for page := 0; ; page++ {
			if page > 5 {
				t.Fatalf("paging did not end after %d pages", page)
			}
			runs, next, err := s.ListFlowRuns(ctx, f)
			requireNoError(t, err, "ListFlowRuns page %d", page)
			got = append(got, runs...)
			if next == "" {
				break
			}
			f.Cursor = next
		}
		requireSameIDs(t, "pages", runIDs(got), want)
		requireNewestFirst(t, got)
		if len(got) != len(want) {
			t.Errorf("pages hold %d runs, want %d (none twice)", len(got), len(want))
		}
	})

	t.Run("PagingStates", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "load", "h"))
		kinds := []state.Kind{state.Failed, state.Success, state.Running, state.Cancelled}
		var want []string
		for i := range 30 {
			k := kinds[i%len(kinds)]
			run := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, State: state.State{Kind: k}})
			if k == state.Failed || k == state.Running || k == state.Cancelled {
				want = append(want, run.ID)
			}
		}
		// Listed in any order, with a duplicate: the same runs, once.
		f := store.FlowRunFilter{States: []state.Kind{state.Running, state.Failed, state.Cancelled, state.Failed}, Limit: 7}
		var got []store.FlowRun
		for page := 0; ; page++ {
			if page > 5 {
				t.Fatalf("paging did not end after %d pages", page)
			}
			runs, next, err := s.ListFlowRuns(ctx, f)
			requireNoError(t, err, "ListFlowRuns page %d", page)
			if len(runs) > 7 {
				t.Fatalf("page %d holds %d runs, limit 7", page, len(runs))
			}
			got = append(got, runs...)
			if next == "" {
				break
			}
			f.Cursor = next
		}
		requireSameIDs(t, "pages", runIDs(got), want)
		requireNewestFirst(t, got)
		if len(got) != len(want) {
			t.Errorf("pages hold %d runs, want %d (none twice)", len(got), len(want))
		}
		counts, err := s.CountFlowRunsMatching(ctx, store.FlowRunFilter{States: f.States})
		requireNoError(t, err, "CountFlowRunsMatching")
		if w := map[state.Kind]int64{state.Failed: 8, state.Running: 7, state.Cancelled: 7}; !maps.Equal(counts, w) {
			t.Errorf("CountFlowRunsMatching = %v, want %v", counts, w)
		}
	})

	t.Run("CountTaskRuns", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		f := seed(t, s, "etl")
		other := createRun(t, s, store.FlowRun{FlowVersionID: f.version.ID})
		empty := createRun(t, s, store.FlowRun{FlowVersionID: f.version.ID})
		unrelated := createRun(t, s, store.FlowRun{FlowVersionID: f.version.ID})
		ts := func(key string, k state.Kind) store.TaskRunWrite {
			return store.TaskRunWrite{Key: key, Task: key, State: state.State{Kind: k}}
		}
		writeTasks(t, s, f.run.ID, ts("a", state.Success), ts("b", state.Success), ts("c", state.Failed),
			ts("d", state.Pending), ts("m[0]", state.Success), ts("m[1]", state.Running))
		writeTasks(t, s, other.ID, ts("a", state.Running))
		writeTasks(t, s, unrelated.ID, ts("a", state.Failed))

		got, err := s.CountTaskRuns(ctx, []string{f.run.ID, other.ID, empty.ID, "0190c7a4-0000-7000-8000-000000000099"})
		requireNoError(t, err, "CountTaskRuns")
		want := map[string]map[state.Kind]int{
			f.run.ID: {state.Success: 3, state.Failed: 1, state.Pending: 1, state.Running: 1},
			other.ID: {state.Running: 1},
		}
		if !maps.EqualFunc(got, want, maps.Equal) {
			t.Errorf("CountTaskRuns = %v, want %v (no entry for a run without task runs, nor an unknown one)", got, want)
		}

		got, err = s.CountTaskRuns(ctx, nil)
		requireNoError(t, err, "CountTaskRuns of none")
		if len(got) != 0 {
			t.Errorf("CountTaskRuns(nil) = %v, want empty", got)
		}

		tooMany := make([]string, store.MaxCountTaskRuns+1)
		for i := range tooMany {
			tooMany[i] = f.run.ID
		}
		_, err = s.CountTaskRuns(ctx, tooMany)
		requireErrorIs(t, err, reeve.ErrInvalid, "at most")
	})
}
