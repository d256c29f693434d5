package execute_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/secret"
	"github.com/reevehq/reeve/internal/server"
	"github.com/reevehq/reeve/internal/store"
	"github.com/reevehq/reeve/internal/store/sqlite"
	"github.com/reevehq/reeve/internal/testenv"
)

// TestMain fails the tests if a goroutine is left running: every runner,
// reporter and server ends.
func TestMain(m *testing.M) { testenv.Main(m) }

// env is a real Reeve server (SQLite store) served over loopback HTTP by a
// listener the test can stop and start again on the same address, keeping
// the store: the server "restarts".
type env struct {
	t           *testing.T
	store       store.Store
	handler     http.Handler
	addr        string
	url         string
	admin       *client.Client
	adminSecret string
	agent       *client.Client
	agentID     string

	mu sync.Mutex
	hs *http.Server
}

// newEnv starts a server whose runners heartbeat every heartbeat (0: the
// server's default).
func newEnv(t *testing.T, heartbeat time.Duration) *env {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "reeve.db"))
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(server.Config{Store: st, Sealer: secret.NewBox(secret.NewKey()), PollInterval: 20 * time.Millisecond, HeartbeatInterval: heartbeat})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	admin, created, err := srv.Bootstrap(ctx, "")
	if err != nil || !created {
		t.Fatalf("Bootstrap = %v, %v", created, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, handler: srv.Handler(), addr: ln.Addr().String()}
	e.url = "http://" + e.addr
	e.serve(ln)
	t.Cleanup(e.stop)
	e.admin = e.client(admin)
	e.adminSecret = admin
	nt, err := e.admin.CreateToken(ctx, api.CreateToken{Name: "agent", Role: api.RoleAgent})
	if err != nil {
		t.Fatal(err)
	}
	e.agent = e.client(nt.Secret)
	a, err := e.agent.RegisterAgent(ctx, api.RegisterAgent{Name: "test-agent"})
	if err != nil {
		t.Fatal(err)
	}
	e.agentID = a.ID
	return e
}

func (e *env) serve(ln net.Listener) {
	hs := &http.Server{Handler: e.handler}
	e.mu.Lock()
	e.hs = hs
	e.mu.Unlock()
	go hs.Serve(ln)
}

// stop stops serving: the listener closes, requests in flight finish.
func (e *env) stop() {
	e.mu.Lock()
	hs := e.hs
	e.hs = nil
	e.mu.Unlock()
	if hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		hs.Close()
	}
}

// start serves again on the same address.
func (e *env) start() {
	e.t.Helper()
	var ln net.Listener
	var err error
	for try := 0; try < 100; try++ {
		if ln, err = net.Listen("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatalf("listen on %s again: %v", e.addr, err)
	}
	e.serve(ln)
}

func (e *env) client(token string, opts ...client.Option) *client.Client {
	e.t.Helper()
	c, err := client.New(e.url, token, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// register registers a flow from its spec JSON.
func (e *env) register(spec json.RawMessage) *api.Registered {
	e.t.Helper()
	reg, err := e.admin.RegisterFlow(e.t.Context(), api.RegisterFlow{Spec: spec, Storage: api.Storage{Kind: "local", Path: "/bin/true"}})
	if err != nil {
		e.t.Fatalf("RegisterFlow: %v", err)
	}
	return reg
}

// claim creates a run of a flow and claims it as the agent does, returning
// the run and its run token.
func (e *env) claim(flowID string, params string) (api.FlowRun, string) {
	e.t.Helper()
	req := api.CreateFlowRun{FlowID: flowID}
	if params != "" {
		req.Params = json.RawMessage(params)
	}
	created, err := e.admin.CreateFlowRun(e.t.Context(), req)
	if err != nil {
		e.t.Fatalf("CreateFlowRun: %v", err)
	}
	return e.claimRun(created.FlowRun.ID)
}

// claimRun claims the (only) due run, which must be id.
func (e *env) claimRun(id string) (api.FlowRun, string) {
	e.t.Helper()
	cl, err := e.agent.Claim(e.t.Context(), e.agentID, 5*time.Second)
	if err != nil || cl == nil {
		e.t.Fatalf("Claim = %v, %v", cl, err)
	}
	if cl.FlowRun.ID != id {
		e.t.Fatalf("claimed run %s, want %s", cl.FlowRun.ID, id)
	}
	return cl.FlowRun, cl.Token
}

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// counter is an http.RoundTripper that counts requests by the last segment
// of their path, and failed round trips.
type counter struct {
	base     http.RoundTripper
	mu       sync.Mutex
	requests map[string]int
	failures atomic.Int64
	// loseAnswer, if set, is asked about each request: true sends it but
	// loses its answer (the server applied it; the client sees an error).
	loseAnswer func(r *http.Request) bool
}

func newCounter() *counter {
	return &counter{base: http.DefaultTransport.(*http.Transport).Clone(), requests: map[string]int{}}
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	seg := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	c.mu.Lock()
	c.requests[r.Method+" "+seg]++
	c.mu.Unlock()
	res, err := c.base.RoundTrip(r)
	if err != nil {
		c.failures.Add(1)
	}
	if err == nil && c.loseAnswer != nil && c.loseAnswer(r) {
		res.Body.Close()
		c.failures.Add(1)
		return nil, errors.New("test: the answer was lost on the way back")
	}
	return res, err
}

func (c *counter) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests[key]
}

// graph is a hand-built flow: tasks by ID, each a function of its context,
// with state edges; results are ints, checkpointed to a mem:// store.
type graph struct {
	name    string
	ids     []string
	fns     map[string]func(ctx context.Context, in int) (int, error)
	after   map[string][]string
	from    map[string]string // the task whose result is the input
	opts    map[string]engine.Options
	store   string   // the flow's result store URL
	secrets []string // declared secrets
}

func newGraph(name string) *graph {
	return &graph{name: name, fns: map[string]func(context.Context, int) (int, error){}, after: map[string][]string{},
		from: map[string]string{}, opts: map[string]engine.Options{}, store: "mem://execute-test"}
}

func (g *graph) task(id string, fn func(ctx context.Context) (int, error), after ...string) {
	g.ids = append(g.ids, id)
	g.fns[id] = func(ctx context.Context, _ int) (int, error) { return fn(ctx) }
	g.after[id] = after
}

// taskFrom adds a task that takes the result of task from as its input.
func (g *graph) taskFrom(id, from string, fn func(ctx context.Context, in int) (int, error)) {
	g.ids = append(g.ids, id)
	g.fns[id] = fn
	g.from[id] = from
}

// retries gives a task retries.
func (g *graph) retries(id string, n int, delay time.Duration) {
	o := g.opts[id]
	o.SetRetries(n, delay)
	g.opts[id] = o
}

// spec is the JSON spec of the graph, for the server.
func (g *graph) spec() json.RawMessage {
	type input struct {
		Kind string `json:"kind"`
		Task string `json:"task"`
	}
	type task struct {
		ID     string   `json:"id"`
		Task   string   `json:"task"`
		Inputs []input  `json:"inputs,omitempty"`
		After  []string `json:"after,omitempty"`
	}
	s := struct {
		SpecVersion int                 `json:"spec_version"`
		Name        string              `json:"name"`
		ResultStore string              `json:"result_store,omitempty"`
		Tasks       []task              `json:"tasks"`
		Secrets     []map[string]string `json:"secrets,omitempty"`
	}{1, g.name, g.store, nil, nil}
	for _, name := range g.secrets {
		s.Secrets = append(s.Secrets, map[string]string{"name": name})
	}
	for _, id := range g.ids {
		tk := task{ID: id, Task: "test." + id, After: g.after[id]}
		if from := g.from[id]; from != "" {
			tk.Inputs = []input{{Kind: "task", Task: from}}
		}
		s.Tasks = append(s.Tasks, tk)
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}

// engine builds the engine graph.
func (g *graph) engine() *engine.Graph {
	eg := &engine.Graph{Flow: g.name, ResultStore: g.store, Secrets: g.secrets}
	index := map[string]int{}
	for i, id := range g.ids {
		index[id] = i
		fn := g.fns[id]
		def := &engine.TaskDef{
			Name: "test." + id,
			Call: func(ctx context.Context, args []any) (any, error) {
				in := 0
				if len(args) > 0 && args[0] != nil {
					in = args[0].(int)
				}
				return fn(ctx, in)
			},
			Result: reflect.TypeFor[int](),
			DecodeResult: func(unmarshal func([]byte, any) error, data []byte) (any, error) {
				var v int
				err := unmarshal(data, &v)
				return v, err
			},
		}
		n := &engine.Node{ID: id, Def: def, Opts: g.opts[id]}
		if from, ok := g.from[id]; ok {
			def.ArgTypes = []reflect.Type{reflect.TypeFor[int]()}
			n.Args = []engine.Arg{{Kind: engine.ArgNode, Node: index[from]}}
		}
		for _, u := range g.after[id] {
			n.After = append(n.After, index[u])
		}
		eg.Nodes = append(eg.Nodes, n)
	}
	return eg
}

// engineLogger is the logger a task gets (reeve.Logger in the SDK).
var engineLogger = engine.Logger
