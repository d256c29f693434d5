package ui

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/spec"
	"github.com/reevehq/reeve/internal/state"
)

// graphSpec builds a spec from "a>b" edges; a task named "*x" is mapped.
func graphSpec(name string, tasks []string, edges ...string) *spec.Spec {
	sp := &spec.Spec{Name: name}
	up := map[string][]string{}
	for _, e := range edges {
		a, b, _ := strings.Cut(e, ">")
		up[b] = append(up[b], a)
	}
	for _, id := range tasks {
		mapped := strings.HasPrefix(id, "*")
		id = strings.TrimPrefix(id, "*")
		t := spec.Task{ID: id, Task: id, Mapped: mapped}
		for i, u := range up[id] {
			if i == 0 {
				t.Inputs = append(t.Inputs, spec.Input{Kind: spec.InputTask, Task: u, Each: mapped})
			} else {
				t.After = append(t.After, u)
			}
		}
		sp.Tasks = append(sp.Tasks, t)
	}
	return sp
}

// checkLayout fails unless every edge points to a later layer and drawn
// left to right, and no two nodes overlap.
func checkLayout(t *testing.T, in graphInput, l *graphLayout) {
	t.Helper()
	if len(l.Nodes) != len(in.IDs) {
		t.Fatalf("%d nodes, want %d", len(l.Nodes), len(in.IDs))
	}
	for i, id := range in.IDs {
		v, ok := l.node(id)
		if !ok {
			t.Fatalf("no node %q", id)
		}
		for _, u := range in.Up[i] {
			un, _ := l.node(u)
			if un.Layer >= v.Layer || un.X >= v.X {
				t.Errorf("edge %s → %s goes from layer %d (x %d) to layer %d (x %d)", u, id, un.Layer, un.X, v.Layer, v.X)
			}
		}
	}
	for i, a := range l.Nodes {
		if a.X < 0 || a.Y < 0 || a.X+graphNodeW > l.W || a.Y+a.H > l.H {
			t.Errorf("node %s at (%d,%d) is outside the %dx%d drawing", a.ID, a.X, a.Y, l.W, l.H)
		}
		for _, b := range l.Nodes[i+1:] {
			if a.X < b.X+graphNodeW && b.X < a.X+graphNodeW && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				t.Errorf("nodes %s (%d,%d) and %s (%d,%d) overlap", a.ID, a.X, a.Y, b.ID, b.X, b.Y)
			}
		}
	}
	if len(l.Order) != len(in.IDs) {
		t.Errorf("the order has %d tasks, want %d", len(l.Order), len(in.IDs))
	}
}

func TestLayoutGraph(t *testing.T) {
	t.Parallel()
	wide := []string{"src"}
	var wideEdges []string
	for i := range 30 {
		id := fmt.Sprintf("w%02d", i)
		wide = append(wide, id)
		wideEdges = append(wideEdges, "src>"+id, id+">sink")
	}
	wide = append(wide, "sink")
	for _, tc := range []struct {
		name   string
		tasks  []string
		edges  []string
		layers map[string]int // some tasks' expected layers
		cross  int            // the fewest crossings the sweeps must reach
	}{
		{"one task", []string{"a"}, nil, map[string]int{"a": 0}, 0},
		{"chain", []string{"a", "b", "c"}, []string{"a>b", "b>c"}, map[string]int{"a": 0, "b": 1, "c": 2}, 0},
		{"diamond", []string{"a", "b", "c", "d"}, []string{"a>b", "a>c", "b>d", "c>d"}, map[string]int{"a": 0, "b": 1, "c": 1, "d": 2}, 0},
		{"long edge by longest path", []string{"a", "b", "c", "d"}, []string{"a>b", "b>c", "c>d", "a>d"}, map[string]int{"d": 3}, 0},
		{"binding order after upstream", []string{"d", "c", "b", "a"}, []string{"a>b", "b>c", "c>d"}, map[string]int{"a": 0, "d": 3}, 0},
		{"crossing undone", []string{"a", "b", "x", "y"}, []string{"a>y", "b>x"}, map[string]int{"x": 1, "y": 1}, 0},
		{"mapped", []string{"src", "*fan", "sum"}, []string{"src>fan", "fan>sum"}, map[string]int{"fan": 1, "sum": 2}, 0},
		{"wide", wide, wideEdges, map[string]int{"w29": 1, "sink": 2}, 0},
		{"unconnected", []string{"a", "b", "c"}, nil, map[string]int{"a": 0, "b": 0, "c": 0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := graphInputOf(graphSpec(tc.name, tc.tasks, tc.edges...))
			l := layoutGraph(in)
			checkLayout(t, in, l)
			for id, want := range tc.layers {
				if n, _ := l.node(id); n.Layer != want {
					t.Errorf("%s is in layer %d, want %d", id, n.Layer, want)
				}
			}
			// Deterministic: the same input, the same layout.
			if again := layoutGraph(in); !reflect.DeepEqual(l, again) {
				t.Error("two layouts of one graph differ")
			}
			if x := adjacentCrossings(l); x > tc.cross {
				t.Errorf("%d crossings, want at most %d", x, tc.cross)
			}
			if len(l.Edges) != len(tc.edges) {
				t.Errorf("%d edges drawn, want %d", len(l.Edges), len(tc.edges))
			}
			for _, n := range l.Nodes {
				if strings.HasPrefix(n.ID, "fan") && (!n.Mapped || n.H != graphGroupH) {
					t.Errorf("the mapped task's node is %+v", n)
				}
			}
		})
	}
}

// adjacentCrossings counts the crossings of edges between tasks of
// neighbouring layers, from the drawn positions.
func adjacentCrossings(l *graphLayout) int {
	type seg struct{ a, b *graphNode }
	var segs []seg
	for _, e := range l.Edges {
		a, _ := l.node(e.From)
		b, _ := l.node(e.To)
		if b.Layer == a.Layer+1 {
			segs = append(segs, seg{a, b})
		}
	}
	n := 0
	for i, s := range segs {
		for _, r := range segs[i+1:] {
			if s.a.Layer == r.a.Layer && (s.a.Y-r.a.Y)*(s.b.Y-r.b.Y) < 0 {
				n++
			}
		}
	}
	return n
}

// A cycle, which no valid spec has, still gets a layout, and a long edge
// bends through the layers it crosses.
func TestLayoutGraphCycleAndBends(t *testing.T) {
	t.Parallel()
	in := graphInput{IDs: []string{"a", "b", "c"}, Mapped: []bool{false, false, false}, Up: [][]string{{"c"}, {"a"}, {"b"}}}
	l := layoutGraph(in)
	if len(l.Nodes) != 3 {
		t.Fatalf("a cycle's layout has %d nodes", len(l.Nodes))
	}
	in = graphInputOf(graphSpec("bend", []string{"a", "b", "c", "d"}, "a>b", "b>c", "c>d", "a>d"))
	l = layoutGraph(in)
	for _, e := range l.Edges {
		if e.From == "a" && e.To == "d" && strings.Count(e.Path, "L") != 2 {
			t.Errorf("the edge a → d spans 3 layers but bends %d times: %s", strings.Count(e.Path, "L"), e.Path)
		}
	}
}

func TestGraphCache(t *testing.T) {
	t.Parallel()
	c := newGraphCache(2)
	one := graphSpec("one", []string{"a", "b"}, "a>b")
	// Another name and options, the same graph: the same layout.
	same := graphSpec("two", []string{"a", "b"}, "a>b")
	same.Tasks[0].Options.Retries = 3
	other := graphSpec("three", []string{"a", "b", "c"}, "a>b", "a>c")

	l1 := c.layout(graphInputOf(one))
	if l2 := c.layout(graphInputOf(same)); l2 != l1 {
		t.Error("a spec with the same graph got another layout")
	}
	if c.hits != 1 || c.misses != 1 {
		t.Errorf("hits %d misses %d, want 1 and 1", c.hits, c.misses)
	}
	l3 := c.layout(graphInputOf(other))
	if l3 == l1 || l3.Hash == l1.Hash {
		t.Error("another graph got the same layout")
	}
	// Bounded: a third graph evicts the least recently used.
	c.layout(graphInputOf(graphSpec("four", []string{"x"})))
	if c.order.Len() != 2 {
		t.Errorf("the cache holds %d layouts, want 2", c.order.Len())
	}
	if _, ok := c.byHash[l1.Hash]; ok {
		t.Error("the least recently used layout was kept")
	}
}

func TestGroupCounts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0"}, {999, "999"}, {5000, "5,000"}, {1234567, "1,234,567"}, {-1200, "-1,200"}} {
		if got := thousands(tc.n); got != tc.want {
			t.Errorf("thousands(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	g := &taskGroup{Base: "fan", Total: 5000}
	g.Counts[state.Success] = 4980
	g.Counts[state.Running] = 15
	g.Counts[state.Failed] = 5
	if s := g.countsText(0); s != "5,000 · 4,980 Success · 15 Running · 5 Failed" {
		t.Errorf("countsText(0) = %q", s)
	}
	if s := g.countsText(1); s != "5,000 · 4,980 Success · 20 other" {
		t.Errorf("countsText(1) = %q", s)
	}
	if k := g.summaryKind(); k != state.Running {
		t.Errorf("a group with running children is %s, want Running", k)
	}
}

// timelineRun is a run of src → fan (mapped, 3 children) → sum, and
// late (not started), at a fixed time.
func timelineRun(t0 time.Time) (api.FlowRun, []state.State, *graphLayout, []api.TaskRun) {
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	l := layoutGraph(graphInputOf(graphSpec("tl", []string{"src", "*fan", "sum", "late"}, "src>fan", "fan>sum")))
	run := api.FlowRun{ID: "r1", CreatedAt: t0, State: state.State{Kind: state.Running, Time: sec(1)}}
	hist := []state.State{{Kind: state.Scheduled, Time: t0}, {Kind: state.Running, Time: sec(1)}}
	tr := func(key string, idx int, k state.Kind, at int) api.TaskRun {
		return api.TaskRun{Key: key, MapIndex: idx, CreatedAt: sec(1), UpdatedAt: sec(at), State: state.State{Kind: k, Time: sec(at)}}
	}
	trs := []api.TaskRun{
		tr("src", -1, state.Success, 4),
		tr("fan", -1, state.Running, 4),
		tr("fan[0]", 0, state.Success, 6),
		tr("fan[1]", 1, state.Success, 9),
		tr("fan[2]", 2, state.Running, 5),
		tr("late", -1, state.Pending, 1),
	}
	return run, hist, l, trs
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	run, hist, l, trs := timelineRun(t0)
	rt := groupTasks(run.ID, trs, l.mapped())
	now := t0.Add(11 * time.Second)
	td := timelineOf(run, hist, l, rt, now)
	rows := map[string]timelineRow{}
	var keys []string
	for _, r := range td.Rows {
		rows[r.Key] = r
		keys = append(keys, r.Key)
	}
	if got := strings.Join(keys, ","); got != "src,late,fan,sum" {
		t.Errorf("rows %s, want src,late,fan,sum (by layer: one row for the mapped task)", got)
	}
	if !td.Start.Equal(t0.Add(time.Second)) || !td.End.Equal(now) || !td.Open {
		t.Errorf("axis %v – %v open %v, want from the run's start to now", td.Start, td.End, td.Open)
	}
	for _, tc := range []struct {
		key        string
		start, end int // seconds after t0; -1: none
		x, w       string
	}{
		{"src", 1, 4, "0.00%", "30.00%"},   // ready at the run's start, ended at 4 s
		{"fan", 4, -1, "30.00%", "70.00%"}, // from src's end, still running: to now
		{"sum", -1, -1, "", ""},
		{"late", -1, -1, "", ""},
	} {
		r := rows[tc.key]
		sec := func(n int) time.Time {
			if n < 0 {
				return time.Time{}
			}
			return t0.Add(time.Duration(n) * time.Second)
		}
		if !r.Span.Start.Equal(sec(tc.start)) || !r.Span.End.Equal(sec(tc.end)) {
			t.Errorf("%s spans %v – %v, want %d s – %d s", tc.key, r.Span.Start, r.Span.End, tc.start, tc.end)
		}
		if r.X != tc.x || r.W != tc.w {
			t.Errorf("%s's bar is at %s, %s wide; want %s, %s", tc.key, r.X, r.W, tc.x, tc.w)
		}
	}
	if r := rows["fan"]; r.Group == nil || r.Text != "3 · 2 Success · 1 Running" || r.Kind != state.Running {
		t.Errorf("the mapped row is %+v", r)
	}
	// Once every child finished, the group ends with its last child.
	trs[4].State = state.State{Kind: state.Success, Time: t0.Add(10 * time.Second)}
	trs[1].State = state.State{Kind: state.Mapped, Time: t0.Add(10 * time.Second)}
	td = timelineOf(run, hist, l, groupTasks(run.ID, trs, l.mapped()), now)
	for _, r := range td.Rows {
		if r.Key == "fan" && !r.Span.End.Equal(t0.Add(10*time.Second)) {
			t.Errorf("the finished group ends at %v, want 10 s", r.Span.End)
		}
	}
}

func TestDrawGraph(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	run, _, l, trs := timelineRun(t0)
	svg := string(drawGraph(l, run.ID, groupTasks(run.ID, trs, l.mapped())))
	for _, want := range []string{
		`id="n-src" data-task="src" data-state="Success" href="/ui/runs/r1/tasks/src"`,
		`class="gnode gn-active gn-group" id="n-fan"`,
		`<text class="gn-counts" x="10" y="49">3 · 2 Success · 1 Running</text>`,
		`class="gnode gn-waiting gn-notstarted" id="n-sum"`, // no task run yet: dashed
		`class="gnode gn-waiting gn-notstarted" id="n-late"`,
		`<path class="edge" data-from="src" data-to="fan"`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("the graph lacks %s:\n%s", want, svg)
		}
	}
	static := string(drawGraph(l, "", nil))
	if strings.Contains(static, "href=") || !strings.Contains(static, `<text class="gn-state" x="10" y="33">mapped</text>`) {
		t.Errorf("the static graph:\n%s", static)
	}
}

// BenchmarkGraphTabs: the UI's own work on a run of 50 tasks and a
// 5,000-way map, the API read aside: grouping the task runs, drawing the
// graph (layout cached), and the timeline.
func BenchmarkGraphTabs(b *testing.B) {
	tasks := []string{"items", "*work", "report"}
	edges := []string{"items>work", "work>report"}
	for i := range 48 {
		id := fmt.Sprintf("p%02d", i)
		tasks = append(tasks, id)
		if i%5 == 0 {
			edges = append(edges, "items>"+id)
		} else {
			edges = append(edges, fmt.Sprintf("p%02d>%s", i-1, id))
		}
	}
	in := graphInputOf(graphSpec("bench", tasks, edges...))
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	trs := []api.TaskRun{}
	for i, id := range in.IDs {
		trs = append(trs, api.TaskRun{Key: id, MapIndex: -1, CreatedAt: t0, State: state.State{Kind: state.Success, Time: t0.Add(time.Duration(i) * time.Second)}})
	}
	for i := range 5000 {
		trs = append(trs, api.TaskRun{Key: fmt.Sprintf("work[%d]", i), MapIndex: i, CreatedAt: t0, State: state.State{Kind: state.Success, Time: t0.Add(time.Duration(i) * time.Millisecond)}})
	}
	run := api.FlowRun{ID: "r", CreatedAt: t0, State: state.State{Kind: state.Running, Time: t0}}
	cache := newGraphCache(4)
	b.Run("layout", func(b *testing.B) {
		for b.Loop() {
			layoutGraph(in)
		}
	})
	b.Run("graph", func(b *testing.B) {
		for b.Loop() {
			l := cache.layout(in)
			drawGraph(l, run.ID, groupTasks(run.ID, trs, l.mapped()))
		}
	})
	b.Run("timeline", func(b *testing.B) {
		for b.Loop() {
			l := cache.layout(in)
			timelineOf(run, nil, l, groupTasks(run.ID, trs, l.mapped()), t0.Add(time.Hour))
		}
	})
}
