package server_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/server"
)

// runWithToken creates a run of a flow registered in project and mints
// its run token.
func (e *env) runWithToken(project string) (api.FlowRun, string) {
	e.t.Helper()
	reg := e.register(e.admin, api.RegisterFlow{Project: project, Spec: specJSON("etl", "")})
	run := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	var mint api.NewToken
	e.ok(201, "POST", "/api/v1/flow_runs/"+run.ID+"/tokens", e.admin, nil, &mint)
	return run, mint.Secret
}

func TestResultsRoundTripInTheRunsProject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(201, "POST", "/api/v1/projects", e.admin, api.CreateProject{Name: "billing"}, nil)
	run, token := e.runWithToken("")
	sibling, siblingToken := e.runWithToken("")
	other, otherToken := e.runWithToken("billing")

	path := func(run api.FlowRun, key string) string { return "/api/v1/flow_runs/" + run.ID + "/results/" + key }
	value := []byte{0, 1, 2, '{', 0xff}
	var put api.Result
	e.ok(200, "PUT", path(run, "etl/run-1/transform/3.json"), token, api.Result{Value: value}, &put)
	if !bytes.Equal(put.Value, value) || put.UpdatedAt.IsZero() {
		t.Errorf("PUT = %+v", put)
	}
	var got api.Result
	e.ok(200, "GET", path(run, "etl/run-1/transform/3.json"), token, nil, &got)
	if !bytes.Equal(got.Value, value) || !got.UpdatedAt.Equal(put.UpdatedAt) {
		t.Errorf("GET = %+v, want %+v", got, put)
	}
	// The value is base64 on the wire.
	res := e.do("GET", path(run, "etl/run-1/transform/3.json"), token, nil)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(res.body, &raw); err != nil || string(raw["value"]) != `"AAECe/8="` {
		t.Errorf("GET body = %s, want value in base64", res.body)
	}

	// Another run of the same project shares the key space (cache
	// entries); the admin reads it too.
	e.ok(200, "GET", path(sibling, "etl/run-1/transform/3.json"), siblingToken, nil, &got)
	if !bytes.Equal(got.Value, value) {
		t.Errorf("a sibling run read %q, want %q", got.Value, value)
	}
	e.ok(200, "GET", path(run, "etl/run-1/transform/3.json"), e.admin, nil, nil)

	// A run of another project has its own key space, and may not name
	// another run.
	e.fails(404, "GET", path(other, "etl/run-1/transform/3.json"), otherToken, nil, "not found")
	e.fails(403, "GET", path(run, "etl/run-1/transform/3.json"), otherToken, nil, "may not")
	e.ok(200, "PUT", path(other, "etl/run-1/transform/3.json"), otherToken, api.Result{Value: []byte("billing")}, nil)
	e.ok(200, "GET", path(run, "etl/run-1/transform/3.json"), token, nil, &got)
	if !bytes.Equal(got.Value, value) {
		t.Errorf("project billing's write changed the default project's result: %q", got.Value)
	}

	// Missing: 404; a developer may not read results.
	e.fails(404, "GET", path(run, "etl/run-1/nothing.json"), token, nil, "nothing.json", "not found")
	e.fails(403, "GET", path(run, "etl/run-1/transform/3.json"), e.token("developer"), nil, "may not")
	e.fails(404, "GET", "/api/v1/flow_runs/0190c7a4-0000-7000-8000-000000000099/results/k.json", e.admin, nil, "not found")
}

func TestResultsOverTheLimitSayWhatToDo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *server.Config) { c.MaxResultBytes = 1000 })
	run, token := e.runWithToken("")
	path := "/api/v1/flow_runs/" + run.ID + "/results/etl/run/transform/3.json"
	e.ok(200, "PUT", path, token, api.Result{Value: make([]byte, 1000)}, nil)
	e.fails(400, "PUT", path, token, api.Result{Value: make([]byte, 3300)},
		`result "etl/run/transform/3.json" is 3.2 KB, over the server result store's limit of 1000 bytes`,
		`give the flow a blob store (reeve.ResultStore("s3://bucket/prefix") or a file:// directory all agents share)`)

	// With the default limit of 1 MB.
	e = newEnv(t)
	run, token = e.runWithToken("")
	path = "/api/v1/flow_runs/" + run.ID + "/results/etl/run/transform/3.json"
	e.ok(200, "PUT", path, token, api.Result{Value: make([]byte, api.DefaultMaxResultBytes)}, nil)
	e.fails(400, "PUT", path, token, api.Result{Value: make([]byte, 3355443)},
		`result "etl/run/transform/3.json" is 3.2 MB, over the server result store's limit of 1 MB: give the flow a blob store`)
	// A body too large to read is refused before it is read, saying the same.
	e.fails(400, "PUT", path, token, `{"value": "`+strings.Repeat("A", api.MaxLargeBodyBytes)+`"}`,
		"larger than", "limit of 1 MB", "give the flow a blob store")
}

func TestResultKeysAreChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	run, token := e.runWithToken("")
	base := "/api/v1/flow_runs/" + run.ID + "/results/"
	for _, key := range []string{"a", "cache/extract/0a1b.json", "a..b/c", "p%C3%A4sse/x%20y.json", "with%2Fescaped-slash"} {
		e.ok(200, "PUT", base+key, token, api.Result{Value: []byte("v")}, nil)
		e.ok(200, "GET", base+key, token, nil, nil)
	}
	e.fails(400, "PUT", base, token, api.Result{Value: []byte("v")}, "empty")
	e.fails(400, "PUT", base+strings.Repeat("k", 1025), token, api.Result{Value: []byte("v")}, "1025 bytes long", "at most 1024")
	e.fails(400, "PUT", base+"a%00b", token, api.Result{Value: []byte("v")}, "control character")
	e.fails(400, "GET", base+"bad%FFutf8", token, nil, "UTF-8")
}
