package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/secret"
	"github.com/reevehq/reeve/internal/server"
	"github.com/reevehq/reeve/internal/store"
	"github.com/reevehq/reeve/internal/store/sqlite"
	"github.com/reevehq/reeve/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is a real server on a real SQLite store, over loopback HTTP.
type env struct {
	t      testing.TB
	srv    *server.Server
	store  store.Store
	dbPath string
	url    string
	admin  string // an admin token's secret
	http   *http.Client
}

type serverConfig = server.Config

type envOption func(*server.Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "reeve.db")
	st, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newEnvOn(t, st, dbPath, opts...)
}

func newEnvOn(t testing.TB, st store.Store, dbPath string, opts ...envOption) *env {
	t.Helper()
	cfg := server.Config{Store: st, Sealer: secret.NewBox(secret.NewKey()), PollInterval: 50 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	admin, created, err := srv.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		// Another server on this store made the first admin token.
		admin = ""
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &env{t: t, srv: srv, store: st, dbPath: dbPath, url: hs.URL, admin: admin, http: hs.Client()}
}

// response is an answer to a request.
type response struct {
	status int
	body   []byte
	header http.Header
}

// errorBody decodes an error answer.
func (r response) err() api.ErrorDetail {
	var b api.ErrorBody
	_ = json.Unmarshal(r.body, &b)
	return b.Error
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

// do sends a request; body is JSON-encoded unless it is a string or []byte.
func (e *env) do(method, path, token string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: res.StatusCode, body: data, header: res.Header}
}

// ok sends a request that must answer status and decodes the answer into
// out (if not nil).
func (e *env) ok(status int, method, path, token string, body, out any) {
	e.t.Helper()
	res := e.do(method, path, token, body)
	if res.status != status {
		e.t.Fatalf("%s %s = %v, want %d", method, path, res, status)
	}
	if out != nil {
		if err := json.Unmarshal(res.body, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, res.body, err)
		}
	}
}

// fails sends a request that must fail with status and a message that
// contains every one of want.
func (e *env) fails(status int, method, path, token string, body any, want ...string) api.ErrorDetail {
	e.t.Helper()
	res := e.do(method, path, token, body)
	if res.status != status {
		e.t.Fatalf("%s %s = %v, want %d", method, path, res, status)
	}
	d := res.err()
	if d.Code == "" || d.Message == "" {
		e.t.Fatalf("%s %s: error body %s is not {\"error\": {\"code\", \"message\"}}", method, path, res.body)
	}
	for _, w := range want {
		if !strings.Contains(d.Message, w) {
			e.t.Errorf("%s %s: message %q does not say %q", method, path, d.Message, w)
		}
	}
	return d
}

// token creates a token of role and returns its secret.
func (e *env) token(role string) string {
	e.t.Helper()
	var nt api.NewToken
	e.ok(201, "POST", "/api/v1/tokens", e.admin, api.CreateToken{Name: role + " token", Role: role}, &nt)
	return nt.Secret
}

// specJSON returns a valid spec of a flow with tasks a → b, parameters and
// options given as extra top-level JSON members (may be "").
func specJSON(name, extra string) json.RawMessage {
	if extra != "" {
		extra = "," + extra
	}
	return json.RawMessage(fmt.Sprintf(`{"spec_version":1,"name":%q,"tasks":[{"id":"a","task":"a"},{"id":"b","task":"b","after":["a"]}]%s}`, name, extra))
}

const withParams = `"parameters":[{"name":"day","type":"string","go_type":"string","required":true},{"name":"limit","type":"integer","go_type":"int","default":10}]`

// register registers a flow and returns the answer.
func (e *env) register(token string, req api.RegisterFlow) api.Registered {
	e.t.Helper()
	if req.Storage.Kind == "" {
		req.Storage = api.Storage{Kind: "local", Path: "/usr/local/bin/flows"}
	}
	res := e.do("POST", "/api/v1/flows", token, req)
	if res.status != 201 && res.status != 200 {
		e.t.Fatalf("register flow: %v", res)
	}
	var out api.Registered
	if err := json.Unmarshal(res.body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// run creates a flow run.
func (e *env) run(token string, req api.CreateFlowRun) api.FlowRun {
	e.t.Helper()
	res := e.do("POST", "/api/v1/flow_runs", token, req)
	if res.status != 201 && res.status != 200 {
		e.t.Fatalf("create flow run: %v", res)
	}
	var out api.CreatedFlowRun
	if err := json.Unmarshal(res.body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.FlowRun
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
