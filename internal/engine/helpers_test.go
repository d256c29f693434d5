package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/reevehq/reeve/internal/result"
	"github.com/reevehq/reeve/internal/state"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The test tasks are built by hand, as the SDK would generate them.

func testDef[R any](name string, call func(ctx context.Context, args []any) (any, error), argTypes ...reflect.Type) *TaskDef {
	return &TaskDef{
		Name:     name,
		Call:     call,
		ArgTypes: argTypes,
		Result:   reflect.TypeFor[R](),
		Collect: func(values []any) any {
			out := make([]R, len(values))
			for i, v := range values {
				out[i], _ = v.(R)
			}
			return out
		},
		DecodeResult: func(unmarshal func([]byte, any) error, data []byte) (any, error) {
			var r R
			if err := unmarshal(data, &r); err != nil {
				return nil, err
			}
			return r, nil
		},
	}
}

func def0[R any](name string, fn func(ctx context.Context) (R, error)) *TaskDef {
	return testDef[R](name, func(ctx context.Context, _ []any) (any, error) { return fn(ctx) })
}

func def1[A, R any](name string, fn func(ctx context.Context, a A) (R, error)) *TaskDef {
	d := testDef[R](name, func(ctx context.Context, args []any) (any, error) {
		a, _ := args[0].(A)
		return fn(ctx, a)
	}, reflect.TypeFor[A]())
	d.Elems = []func(any) ([]any, error){func(list any) ([]any, error) {
		if list == nil {
			return nil, nil
		}
		s, ok := list.([]A)
		if !ok {
			return nil, fmt.Errorf("want []%v, got %T", reflect.TypeFor[A](), list)
		}
		out := make([]any, len(s))
		for i, v := range s {
			out[i] = v
		}
		return out, nil
	}}
	return d
}

// graph builds a Graph node by node.
type graph struct{ g Graph }

func newGraph(flow string) *graph { return &graph{g: Graph{Flow: flow}} }

// add binds def under id and returns the node's index.
func (b *graph) add(id string, def *TaskDef, args ...Arg) int {
	b.g.Nodes = append(b.g.Nodes, &Node{ID: id, Def: def, Args: args, Opts: def.Defaults})
	return len(b.g.Nodes) - 1
}

// mapped binds def under id as a mapped task.
func (b *graph) mapped(id string, def *TaskDef, args ...Arg) int {
	i := b.add(id, def, args...)
	b.g.Nodes[i].Mapped = true
	return i
}

func (b *graph) opts(i int, fn func(o *Options)) { fn(&b.g.Nodes[i].Opts) }

func from(i int) Arg { return Arg{Kind: ArgNode, Node: i} }
func each(i int) Arg { return Arg{Kind: ArgNode, Node: i, Each: true} }

// counter counts calls by key (a task ID, or "ID:element"); one per test.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[key]++
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// recorder is a Reporter that keeps every state it is given.
type recorder struct {
	mu    sync.Mutex
	tasks map[string][]state.State
	flow  []state.State
	on    func(key string, s state.State) // called for each task run state, if set
}

func (r *recorder) FlowRunState(_ context.Context, _ RunRef, s state.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flow = append(r.flow, s)
}

func (r *recorder) TaskRunState(_ context.Context, tr TaskRunRef, s state.State) {
	r.mu.Lock()
	if r.tasks == nil {
		r.tasks = map[string][]state.State{}
	}
	r.tasks[tr.Key()] = append(r.tasks[tr.Key()], s)
	on := r.on
	r.mu.Unlock()
	if on != nil {
		on(tr.Key(), s)
	}
}

func (r *recorder) Log(context.Context, TaskRunRef, slog.Record) {}

// reported returns the kinds reported for a task run key.
func (r *recorder) reported(key string) []state.Kind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []state.Kind
	for _, s := range r.tasks[key] {
		out = append(out, s.Kind)
	}
	return out
}

// taskRun returns the task run of run with the given key.
func taskRun(t *testing.T, g *Graph, run *Run, key string) *TaskRun {
	t.Helper()
	var keys []string
	for i := range run.Tasks {
		tr := &run.Tasks[i]
		if tr.Key(g.Nodes[tr.Node]) == key {
			return tr
		}
		keys = append(keys, tr.Key(g.Nodes[tr.Node]))
		for c := range tr.Children {
			if tr.Children[c].Key(g.Nodes[tr.Node]) == key {
				return &tr.Children[c]
			}
			keys = append(keys, tr.Children[c].Key(g.Nodes[tr.Node]))
		}
	}
	t.Fatalf("no task run %q; have %s", key, strings.Join(keys, ", "))
	return nil
}

// priorOf returns every task run state of run, by key: what a server
// would hand the next attempt of the flow run.
func priorOf(g *Graph, run *Run) map[string]state.State {
	out := map[string]state.State{}
	for i := range run.Tasks {
		tr := &run.Tasks[i]
		out[tr.Key(g.Nodes[tr.Node])] = tr.State
		for c := range tr.Children {
			out[tr.Children[c].Key(g.Nodes[tr.Node])] = tr.Children[c].State
		}
	}
	return out
}

// put stores v as JSON under key and returns the Result that locates it.
func put(t *testing.T, storeURL, key string, v any) *state.Result {
	t.Helper()
	st, err := result.Open(t.Context(), storeURL)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(t.Context(), key, data); err != nil {
		t.Fatal(err)
	}
	return &state.Result{Store: st.URL(), Key: key, Serializer: "json"}
}

// get reads the JSON result at res into a new T.
func get[T any](t *testing.T, res *state.Result) T {
	t.Helper()
	var v T
	if !res.Persisted() {
		t.Fatalf("result is not persisted: %+v", res)
	}
	st, err := result.Open(t.Context(), res.Store)
	if err != nil {
		t.Fatal(err)
	}
	data, err := st.Get(t.Context(), res.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// discard is a logger that drops everything.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
