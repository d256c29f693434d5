package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

// graphFlow registers a flow of plain tasks and one mapped task:
// items → work (mapped over items) → report, and p01 … p(plain-3), in
// chains of five hanging off items, the last one also upstream of report.
func (e *env) graphFlow(name string, plain int) api.Flow {
	e.t.Helper()
	type input struct {
		Kind string `json:"kind"`
		Task string `json:"task"`
		Each bool   `json:"each,omitempty"`
	}
	type task struct {
		ID     string   `json:"id"`
		Task   string   `json:"task"`
		Mapped bool     `json:"mapped,omitempty"`
		Inputs []input  `json:"inputs,omitempty"`
		After  []string `json:"after,omitempty"`
	}
	tasks := []task{{ID: "items", Task: "items"}, {ID: "work", Task: "work", Mapped: true, Inputs: []input{{Kind: "task", Task: "items", Each: true}}}}
	last := "items"
	for i := 1; i <= plain-2; i++ {
		id := fmt.Sprintf("p%02d", i)
		up := last
		if i%5 == 1 {
			up = "items"
		}
		tasks = append(tasks, task{ID: id, Task: "p", After: []string{up}})
		last = id
	}
	tasks = append(tasks, task{ID: "report", Task: "report", Inputs: []input{{Kind: "task", Task: "work"}}, After: []string{last}})
	sp, err := json.Marshal(map[string]any{"spec_version": 1, "name": name, "tasks": tasks})
	if err != nil {
		e.t.Fatal(err)
	}
	reg, err := e.api.RegisterFlow(context.Background(), api.RegisterFlow{Spec: sp, Storage: api.Storage{Kind: "local", Path: "/usr/local/bin/flows"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return reg.Flow
}

// graphWrite writes task-run states in batches of 500, as a runner's
// reporter does; a key "work[7]" is child 7 of work.
func (rn *runner) graphWrite(kind state.Kind, keys ...string) {
	rn.t.Helper()
	now := time.Now()
	for len(keys) > 0 {
		n := min(len(keys), 500)
		writes := make([]api.TaskRunWrite, 0, n)
		for _, k := range keys[:n] {
			w := api.TaskRunWrite{Key: k, Task: k, MapIndex: -1, ExpectVersion: rn.ver[k], State: state.State{Kind: kind, Time: now}}
			if base, idx, ok := strings.Cut(k, "["); ok {
				w.Task = base
				fmt.Sscanf(idx, "%d]", &w.MapIndex)
			}
			writes = append(writes, w)
		}
		trs, err := rn.api.WriteTaskRunStates(context.Background(), rn.id, writes)
		if err != nil {
			rn.t.Fatal(err)
		}
		for _, tr := range trs {
			rn.ver[tr.Key] = tr.Version
		}
		keys = keys[n:]
	}
}

// graphKeys is "work[from]" … "work[to-1]".
func graphKeys(from, to int) []string {
	keys := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		keys = append(keys, fmt.Sprintf("work[%d]", i))
	}
	return keys
}

// graphBigRun is a running run of a flow of 50 tasks and a 5,000-way map:
// 4,980 children Success and 20 Running, the first chain done.
func (e *env) graphBigRun() (api.FlowRun, *runner) {
	e.t.Helper()
	e.graphFlow("fanout", 50)
	run := e.run("fanout", "")
	rn := e.runner(run.ID)
	rn.run(state.Running, "")
	rn.graphWrite(state.Success, "items", "p01", "p02", "p03", "p04", "p05")
	rn.graphWrite(state.Running, "work", "p06")
	rn.graphWrite(state.Running, graphKeys(0, 5000)...)
	rn.graphWrite(state.Success, graphKeys(0, 4980)...)
	return run, rn
}

// tags counts a page's elements.
func tags(body string) int { return len(regexp.MustCompile(`<[a-zA-Z]`).FindAllStringIndex(body, -1)) }

// TestRunTabsLargeFanOut: a run with a 5,000-way map shows the mapped
// task as one node, one row and one bar with its counts, linking to its
// task-run page, on pages whose size does not grow with the fan-out.
func TestRunTabsLargeFanOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	run, _ := e.graphBigRun()
	u := e.user()
	u.signIn(e.admin)
	base := "/ui/runs/" + run.ID
	counts := "5,000 · 4,980 Success · 20 Running"
	workURL := `href="/ui/runs/` + run.ID + `/tasks/work"`

	g := u.mustGet(base + "?tab=graph")
	g.contains(t, `aria-current="page" id="tab-graph"`, `<svg class="graph"`, `id="n-work"`, workURL, "gn-group", counts,
		`id="n-p01" data-task="p01" data-state="Success"`, `id="n-p06" data-task="p06" data-state="Running"`,
		`class="gnode gn-waiting gn-notstarted" id="n-report"`, `data-from="work" data-to="report"`)
	if n := strings.Count(g.body, `class="gnode`); n != 51 {
		t.Errorf("the graph has %d nodes, want 51 (50 tasks and one mapped task)", n)
	}

	tasks := u.mustGet(base + "?tab=tasks")
	tasks.contains(t, `<tr data-task="work" data-group class="task-group">`, workURL, counts)
	if n := strings.Count(tasks.body, "<tr data-task="); n != 8 {
		t.Errorf("the tasks tab has %d rows, want 8 (7 task runs and one group)", n)
	}

	tl := u.mustGet(base + "?tab=timeline")
	tl.contains(t, `id="timeline"`, `data-open`, `id="tl-work" data-task="work"`, workURL, counts, `class="tl-bar gn-active"`)
	if n := strings.Count(tl.body, `<li class="tl-row"`); n != 51 {
		t.Errorf("the timeline has %d rows, want 51", n)
	}
	for name, p := range map[string]page{"graph": g, "tasks": tasks, "timeline": tl} {
		p.lacks(t, "work[17]")
		if n := tags(p.body); n > 2000 {
			t.Errorf("the %s tab has %d elements, want a bounded page (< 2,000)", name, n)
		}
	}
	// A flow with nothing mapped, not started: every node dashed; task
	// runs the graph has no task for are listed under it.
	e.flow("etl", "")
	small := e.run("etl", "")
	p := u.mustGet("/ui/runs/" + small.ID + "?tab=graph")
	p.contains(t, `class="gnode gn-waiting gn-notstarted" id="n-a"`, `class="gnode gn-waiting gn-notstarted" id="n-b"`, `data-from="a" data-to="b"`)
	p.lacks(t, "gn-group", `id="graph-extra"`)
	e.runner(small.ID).task("cleanup", state.Running, "")
	p = u.mustGet("/ui/runs/" + small.ID + "?tab=graph")
	p.contains(t, `<ul class="graph-extra" id="graph-extra"><li data-task="cleanup">`)
	if p := u.get("/ui/runs/" + small.ID + "?tab=timeline"); p.status != http.StatusOK || !strings.Contains(p.body, `id="tl-cleanup"`) {
		t.Errorf("the timeline of a run with a task the graph lacks = %d:\n%s", p.status, p.body)
	}
}

// TestLiveGroupEvents: the stream sends a mapped task's children as one
// group event per poll with absolute counts, never a task event per
// child, and a stream that starts at the page's cursor (or resumes at an
// event's) sends only what changed after it.
func TestLiveGroupEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.graphFlow("fanout", 10)
	run := e.run("fanout", "")
	rn := e.runner(run.ID)
	rn.run(state.Running, "")
	rn.graphWrite(state.Success, "items")
	rn.graphWrite(state.Running, "work")
	rn.graphWrite(state.Running, graphKeys(0, 1000)...)
	u := e.user()
	u.signIn(e.admin)
	page := u.mustGet("/ui/runs/" + run.ID + "?tab=graph")
	since := regexp.MustCompile(`data-since="(\d+)"`).FindStringSubmatch(page.body)
	if since == nil {
		t.Fatal("the page has no data-since")
	}
	path := "/ui/runs/" + run.ID + "/events?logs=0"

	// From the page's cursor: nothing of what the page showed; then one
	// group event for 1,000 children moving.
	s := u.events(path+"&since="+since[1], "")
	s.want("run", `"state":"Running"`)
	rn.graphWrite(state.Success, graphKeys(0, 1000)...)
	ev := s.want("group", `"key":"work"`, `"total":1000`, `"Success":1000`)
	if !strings.Contains(ev.data, `"text":"1,000 · 1,000 Success"`) {
		t.Errorf("the group event reads %s", ev.data)
	}
	s.cancel()
	for _, ev := range s.seen {
		if ev.event == "task" && (strings.Contains(ev.data, `"key":"work[`) || strings.Contains(ev.data, `"key":"items"`)) {
			t.Errorf("the stream sent %s, which the page had or a group counts", ev.data)
		}
	}
	if n := strings.Count(strings.Join(eventNames(s.seen), ","), "group"); n > 3 {
		t.Errorf("1,000 children moving sent %d group events", n)
	}

	// Resumed at the last event's id: the groups and tasks seen are not
	// sent again; a new change is.
	s = u.events(path, ev.id)
	s.want("run")
	rn.graphWrite(state.Success, "work", "p01")
	s.want("task", `"key":"p01"`, `"state":"Success"`)
	s.cancel()
	for _, ev := range s.seen {
		if ev.event == "task" && strings.Contains(ev.data, `"key":"items"`) {
			t.Errorf("the resumed stream sent %s again", ev.data)
		}
	}
	// Without a cursor, everything once, children as one group.
	s = u.events(path, "")
	got := map[string]int{}
	for {
		ev, _ := s.next()
		got[ev.event]++
		if ev.event == "run" {
			break
		}
	}
	if got["group"] != 1 || got["task"] != 3 { // items, work, p01
		t.Errorf("a fresh stream sent %v, want 3 task events and 1 group event", got)
	}
}

func eventNames(evs []sse) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.event)
	}
	return out
}

// BenchmarkRunPageLargeFanOut: the server render of the run page of a
// run of 50 tasks and a 5,000-way map, tab by tab, through HTTP on
// loopback (the in-process API read of 5,050 task runs included).
func BenchmarkRunPageLargeFanOut(b *testing.B) {
	e := newEnv(b)
	run, _ := e.graphBigRun()
	u := e.user()
	u.signIn(e.admin)
	for _, tab := range []string{"tasks", "timeline", "graph"} {
		b.Run(tab, func(b *testing.B) {
			path := "/ui/runs/" + run.ID + "?tab=" + tab
			for b.Loop() {
				if p := u.get(path); p.status != http.StatusOK {
					b.Fatalf("GET %s = %d", path, p.status)
				}
			}
		})
	}
}
