package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/execute"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/testenv"
)

// triageFlow is a flow program of two tasks, extract → load, run by the
// real runner (execute.Run, the engine and its API reporter) in-process.
// load fails the first time it runs.
type triageFlow struct {
	name            string
	extracts, loads atomic.Int64
}

// spec is the flow's spec, for the server.
func (f *triageFlow) spec() json.RawMessage {
	return json.RawMessage(`{"spec_version":1,"name":"` + f.name + `","tasks":[` +
		`{"id":"extract","task":"triage.extract"},` +
		`{"id":"load","task":"triage.load","inputs":[{"kind":"task","task":"extract"}]}]}`)
}

// graph is the engine graph the program runs.
func (f *triageFlow) graph() *engine.Graph {
	intType := reflect.TypeFor[int]()
	decode := func(unmarshal func([]byte, any) error, data []byte) (any, error) {
		var v int
		err := unmarshal(data, &v)
		return v, err
	}
	extract := &engine.TaskDef{Name: "triage.extract", Result: intType, DecodeResult: decode,
		Call: func(ctx context.Context, args []any) (any, error) { f.extracts.Add(1); return 41, nil }}
	load := &engine.TaskDef{Name: "triage.load", Result: intType, DecodeResult: decode, ArgTypes: []reflect.Type{intType},
		Call: func(ctx context.Context, args []any) (any, error) {
			if f.loads.Add(1) == 1 {
				return 0, errors.New("the warehouse is down")
			}
			return args[0].(int) + 1, nil
		}}
	return &engine.Graph{Flow: f.name, Nodes: []*engine.Node{
		{ID: "extract", Def: extract},
		{ID: "load", Def: load, Args: []engine.Arg{{Kind: engine.ArgNode, Node: 0}}},
	}}
}

// execute runs a flow run to its end with a run token, as an agent's
// runner would, and returns its final state.
func (f *triageFlow) execute(e *env, reg *api.Registered, runID string) state.Kind {
	e.t.Helper()
	ctx := context.Background()
	nt, err := e.api.MintRunToken(ctx, runID)
	if err != nil {
		e.t.Fatal(err)
	}
	cl, err := client.New(e.url, nt.Secret)
	if err != nil {
		e.t.Fatal(err)
	}
	var stderr strings.Builder
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := execute.Run(ctx, execute.Config{
		Client: cl, FlowRunID: runID, Stderr: io.Writer(&stderr),
		Flows: map[string]execute.Flow{f.name: {Graph: f.graph(), SpecHash: reg.Version.SpecHash}},
	})
	if err != nil {
		e.t.Fatalf("the runner of %s: %v\n%s", runID, err, stderr.String())
	}
	return out.State.Kind
}

// triageHistory returns a task run's state history from the API.
func triageHistory(e *env, runID, key string) (api.TaskRun, []state.State) {
	e.t.Helper()
	ctx := context.Background()
	trs, err := e.api.TaskRuns(ctx, runID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, tr := range trs {
		if tr.Key == key {
			h, err := e.api.History(ctx, runID, tr.ID)
			if err != nil {
				e.t.Fatal(err)
			}
			return tr, h
		}
	}
	e.t.Fatalf("run %s has no task run %s", runID, key)
	return api.TaskRun{}, nil
}

func triageRunning(h []state.State) int {
	n := 0
	for _, s := range h {
		if s.Kind == state.Running {
			n++
		}
	}
	return n
}

// TestBrowserTriageRetry: a run failed in its second task. In a browser,
// a user finds it in the runs list, opens it, goes to its tasks tab and
// the failed task's page, reads the error, and retries the run from
// failed. The real runner then runs it again: the failed task runs
// again and the run succeeds, while the upstream task that had finished
// is not run again (its result is reused).
func TestBrowserTriageRetry(t *testing.T) {
	e := newEnv(t)
	// The browser after the server: its cleanup runs first, so no page
	// still holds a stream when the server closes.
	ctx := testenv.Chrome(t)
	f := &triageFlow{name: "triage"}
	reg, err := e.api.RegisterFlow(context.Background(), api.RegisterFlow{Spec: f.spec(), Storage: api.Storage{Kind: "local", Path: "/usr/local/bin/flows"}})
	if err != nil {
		t.Fatal(err)
	}
	failed := e.run("triage", "")
	if k := f.execute(e, reg, failed.ID); k != state.Failed {
		t.Fatalf("the run ended %s, want Failed (load fails the first time)", k)
	}
	extractBefore, _ := triageHistory(e, failed.ID, "extract")
	if extractBefore.State.Kind != state.Success || f.extracts.Load() != 1 {
		t.Fatalf("extract is %s after %d calls, want Success after 1", extractBefore.State.Kind, f.extracts.Load())
	}
	f.extracts.Store(0) // from here, count the calls of the retried run

	b := &browser{t: t, ctx: ctx}
	b.do("sign in", chromedp.Navigate(e.url+"/ui/login?next=/ui/runs"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), e.admin), chromedp.Click(chromedp.CSS("#sign-in")))
	b.at("the runs list", func(s string) bool { return s == "/ui/runs" })

	// The failed run in the runs list → its page → the tasks tab.
	b.do("open the failed run", chromedp.WaitVisible(chromedp.CSS("#runs")), chromedp.Click(chromedp.CSS(`#runs a[href="/ui/runs/`+failed.ID+`"]`)))
	b.at("the run page", func(s string) bool { return s == "/ui/runs/"+failed.ID })
	if s := b.text("#run-state"); !strings.Contains(s, "Failed") {
		t.Errorf("the run's state reads %q, want Failed", s)
	}
	b.do("open the tasks tab", chromedp.Click(chromedp.CSS("#tab-tasks")))
	b.at("the tasks tab", func(s string) bool { return strings.HasSuffix(s, "?tab=tasks") })

	// The failed task's page shows its error.
	taskPath := "/ui/runs/" + failed.ID + "/tasks/load"
	b.do("open the failed task", chromedp.Click(chromedp.CSS(`#tasks a[href="`+taskPath+`"]`)))
	b.at("the task's page", func(s string) bool { return s == taskPath })
	if s := b.text("#task-state"); !strings.Contains(s, "Failed") {
		t.Errorf("the task's state reads %q, want Failed", s)
	}
	if s := b.text(".task-error"); !strings.Contains(s, "the warehouse is down") {
		t.Errorf("the task's error reads %q, want the warehouse is down", s)
	}
	if s := b.text("#upstream"); !strings.Contains(s, "extract") || !strings.Contains(s, "Success") {
		t.Errorf("the task's upstream reads %q, want extract, Success", s)
	}

	// Back to the run, and retry it from failed.
	b.do("back to the run", chromedp.Click(chromedp.CSS("#flow-run")))
	b.at("the run page", func(s string) bool { return s == "/ui/runs/"+failed.ID })
	evalIn[chromedp.Void](b, `window.confirm = function (m) { window.asked = m; return true; }`)
	b.do("retry from failed", chromedp.Click(chromedp.CSS("#retry")))
	b.at("the run page again", func(s string) bool { return s == "/ui/runs/"+failed.ID })
	b.waitJS("the run is Scheduled again", `!!document.querySelector('#run-state [data-state="Scheduled"]')`)
	if n := b.count("#retry"); n != 0 {
		t.Error("the retried run still offers Retry from failed")
	}
	if k := e.state(failed.ID); k != state.Scheduled {
		t.Fatalf("the retried run is %s, want Scheduled", k)
	}

	// The runner runs it again: only load runs.
	if k := f.execute(e, reg, failed.ID); k != state.Success {
		t.Fatalf("the retried run ended %s, want Success", k)
	}
	if n := f.extracts.Load(); n != 0 {
		t.Errorf("extract ran %d times in the retried run, want 0 (its result is reused)", n)
	}
	extract, eh := triageHistory(e, failed.ID, "extract")
	if extract.Version != extractBefore.Version || extract.State.Kind != state.Success || triageRunning(eh) != 1 {
		t.Errorf("extract is %s v%d with %d Running states, want untouched: Success v%d, 1 Running", extract.State.Kind, extract.Version, triageRunning(eh), extractBefore.Version)
	}
	load, lh := triageHistory(e, failed.ID, "load")
	if load.State.Kind != state.Success || triageRunning(lh) != 2 {
		t.Errorf("load is %s with %d Running states, want Success after running twice", load.State.Kind, triageRunning(lh))
	}

	// The task's page now shows both attempts, the first with its error.
	b.do("open the task again", chromedp.Navigate(e.url+taskPath), chromedp.WaitVisible(chromedp.CSS("#task-state")))
	if s := b.text("#task-state"); !strings.Contains(s, "Success") {
		t.Errorf("the task's state reads %q, want Success", s)
	}
	if n := b.count(`.attempt[data-attempt="1"] .task-error`); n != 1 {
		t.Errorf("attempt 1 shows %d errors, want its one", n)
	}
	if n := b.count(`.attempt[data-attempt="2"]`); n != 1 {
		t.Error("the task's page does not show its second attempt")
	}
}
