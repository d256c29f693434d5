package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

// TestEveryRouteAgainstEveryRole calls every route with a token of every
// role. The expectations are written out here, apart from api.Routes, so a
// change of a route's roles has to change this table too.
func TestEveryRouteAgainstEveryRole(t *testing.T) {
	t.Parallel()
	// A admin, D developer, G agent, R the run's own run token.
	allowed := map[string]string{
		"GET /projects":                        "ADG",
		"POST /projects":                       "A",
		"GET /projects/{name}":                 "ADG",
		"POST /flows":                          "AD",
		"GET /flows":                           "ADG",
		"GET /flows/{id}":                      "ADG",
		"GET /flow_versions/{id}":              "ADGRX", // X: the other run is of the same version
		"POST /flow_runs":                      "AD",
		"GET /flow_runs":                       "ADG",
		"GET /flow_runs/counts":                "ADG",
		"GET /flow_runs/{id}":                  "ADGR",
		"POST /flow_runs/{id}/state":           "AGR",
		"POST /flow_runs/{id}/cancel":          "AD",
		"POST /flow_runs/{id}/restart":         "AD",
		"POST /flow_runs/{id}/heartbeat":       "R",
		"POST /flow_runs/{id}/lost":            "AG",
		"POST /flow_runs/{id}/task_run_states": "AR",
		"GET /flow_runs/{id}/history":          "ADGR",
		"POST /flow_runs/{id}/logs":            "AR",
		"GET /flow_runs/{id}/logs":             "ADG",
		"GET /flow_runs/{id}/secrets/{name}":   "R",
		"PUT /flow_runs/{id}/results/{key...}": "AR",
		"GET /flow_runs/{id}/results/{key...}": "AR",
		"POST /flow_runs/{id}/tokens":          "AG",
		"GET /task_runs":                       "ADG",
		"GET /secrets":                         "AD",
		"PUT /secrets/{name}":                  "AD",
		"DELETE /secrets/{name}":               "AD",
		"GET /tokens":                          "A",
		"POST /tokens":                         "A",
		"DELETE /tokens/{id}":                  "A",
		"GET /agents":                          "ADG",
		"POST /agents":                         "AG",
		"POST /agents/{id}/heartbeat":          "AG",
		"POST /agents/{id}/claim":              "AG",
		"GET /schedules":                       "ADG",
		"POST /schedules":                      "AD",
		"GET /schedules/{id}":                  "ADG",
		"POST /schedules/{id}/pause":           "AD",
		"POST /schedules/{id}/resume":          "AD",
		"DELETE /schedules/{id}":               "AD",
	}
	if len(allowed) != len(api.Routes) {
		t.Errorf("the table has %d routes, api.Routes %d: add the new routes here", len(allowed), len(api.Routes))
	}

	e := newEnv(t)
	tokens := map[byte]string{'A': e.admin, 'D': e.token("developer"), 'G': e.token("agent")}
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("etl", `"secrets":[{"name":"API_KEY"}]`)})
	e.ok(200, "PUT", "/api/v1/secrets/API_KEY", e.admin, api.SetSecret{Value: "s3cr3t-value"}, nil)
	var agent api.Agent
	e.ok(200, "POST", "/api/v1/agents", e.admin, api.RegisterAgent{Name: "a1"}, &agent)
	var sched api.Schedule
	e.ok(201, "POST", "/api/v1/schedules", e.admin, api.CreateSchedule{FlowID: reg.Flow.ID, Interval: api.Duration(3600e9)}, &sched)

	for _, rt := range api.Routes {
		key := rt.Method + " " + rt.Path
		for _, role := range []byte("ADGRXN") { // X: another run's token, N: no token
			t.Run(strings.ReplaceAll(key, "/", "_")+"/"+string(role), func(t *testing.T) {
				// Each call gets a fresh run, so calls that finish or
				// cancel a run do not change the next one's answer.
				run := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
				other := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
				var mint api.NewToken
				e.ok(201, "POST", "/api/v1/flow_runs/"+run.ID+"/tokens", e.admin, nil, &mint)
				var otherMint api.NewToken
				e.ok(201, "POST", "/api/v1/flow_runs/"+other.ID+"/tokens", e.admin, nil, &otherMint)
				var throwaway api.NewToken
				e.ok(201, "POST", "/api/v1/tokens", e.admin, api.CreateToken{Name: "throwaway", Role: "developer"}, &throwaway)

				path := rt.Path
				ids := map[string]string{"/flows/": reg.Flow.ID, "/flow_versions/": reg.Version.ID, "/flow_runs/": run.ID,
					"/tokens/": throwaway.Token.ID, "/agents/": agent.ID, "/schedules/": sched.ID}
				for prefix, id := range ids {
					if strings.HasPrefix(path, prefix+"{id}") {
						path = prefix + id + strings.TrimPrefix(path, prefix+"{id}")
					}
				}
				path = strings.Replace(path, "/projects/{name}", "/projects/default", 1)
				path = strings.Replace(path, "{name}", "API_KEY", 1)
				path = strings.Replace(path, "{key...}", "etl/run/a.json", 1)
				if strings.HasSuffix(path, "/claim") {
					path += "?wait=0s"
				}
				if path == "/task_runs" {
					path += "?flow_run_id=" + run.ID
				}

				token := tokens[role]
				switch role {
				case 'R':
					token = mint.Secret
				case 'X':
					token = otherMint.Secret
				}
				res := e.do(rt.Method, api.Prefix+path, token, nil)
				want := strings.IndexByte(allowed[key], role) >= 0
				switch {
				case role == 'N':
					if res.status != 401 || res.err().Code != "unauthorized" {
						t.Errorf("without a token: %v, want 401 unauthorized", res)
					}
				case want && (res.status == 401 || res.status == 403):
					t.Errorf("role %c may call it, got %v", role, res)
				case !want && res.status != 403:
					t.Errorf("role %c may not call it, got %v, want 403", role, res)
				case !want && !strings.Contains(res.err().Message, "may not"):
					t.Errorf("403 message %q does not say who may", res.err().Message)
				case res.status >= 500:
					t.Errorf("got %v", res)
				}
			})
		}
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var nt api.NewToken
	e.ok(201, "POST", "/api/v1/tokens", e.admin, api.CreateToken{Name: "ci", Role: "developer"}, &nt)
	if !strings.HasPrefix(nt.Secret, "reeve_") || nt.Token.Role != "developer" {
		t.Fatalf("new token = %+v", nt)
	}
	e.ok(200, "GET", "/api/v1/projects", nt.Secret, nil, nil)

	// Shown once: the list has no secrets, and the database has only hashes.
	res := e.do("GET", "/api/v1/tokens", e.admin, nil)
	if res.status != 200 || strings.Contains(string(res.body), nt.Secret) || strings.Contains(string(res.body), "secret") {
		t.Errorf("token list = %v, want no secrets", res)
	}
	raw := readDatabase(t, e.dbPath)
	if strings.Contains(raw, nt.Secret) || strings.Contains(raw, strings.TrimPrefix(nt.Secret, "reeve_")) {
		t.Error("the database file holds a token's secret in clear text")
	}

	// Revoked: refused with a message that says so.
	var revoked api.Token
	e.ok(200, "DELETE", "/api/v1/tokens/"+nt.Token.ID, e.admin, nil, &revoked)
	if revoked.RevokedAt.IsZero() {
		t.Errorf("revoked token = %+v, want revoked_at", revoked)
	}
	e.fails(401, "GET", "/api/v1/projects", nt.Secret, nil, "revoked")

	e.fails(400, "POST", "/api/v1/tokens", e.admin, api.CreateToken{Name: "x", Role: "root"}, `token role "root"`)
	e.fails(400, "POST", "/api/v1/tokens", e.admin, api.CreateToken{Name: "x", Role: "run"}, "run tokens are minted")
	e.fails(401, "GET", "/api/v1/projects", "reeve_not-a-real-token", nil, "unknown API token")
	e.fails(401, "GET", "/api/v1/projects", "Basic abc", nil)
}

func TestRunTokenExpiresWhenRunFinishes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("etl", "")})
	run := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	var mint api.NewToken
	e.ok(201, "POST", "/api/v1/flow_runs/"+run.ID+"/tokens", e.admin, nil, &mint)
	var r api.FlowRun
	e.ok(200, "POST", "/api/v1/flow_runs/"+run.ID+"/state", mint.Secret, api.SetState{State: state.State{Kind: state.Running}, ExpectVersion: 1}, &r)
	e.ok(200, "POST", "/api/v1/flow_runs/"+run.ID+"/state", mint.Secret, api.SetState{State: state.State{Kind: state.Success}, ExpectVersion: r.Version}, &r)
	// The last log lines in flight are still taken...
	e.ok(204, "POST", "/api/v1/flow_runs/"+run.ID+"/logs", mint.Secret, api.AppendLogs{Logs: []api.LogLine{{Level: "INFO", Message: "bye"}}}, nil)
	// ...but nothing else.
	e.fails(401, "GET", "/api/v1/flow_runs/"+run.ID, mint.Secret, nil, "expired", "finished")
}

// readDatabase returns the bytes of a SQLite database and its WAL.
func readDatabase(t *testing.T, path string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

var jsonUnmarshal = json.Unmarshal
var _ = fmt.Sprint
