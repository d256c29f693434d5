package server_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/reevehq/reeve/api"
)

// fixture fills a server with one of everything a route can name and
// returns a function that fills a route's path parameters with real IDs.
func fixture(t testing.TB, e *env) func(path string) string {
	t.Helper()
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("etl", `"secrets":[{"name":"API_KEY"}]`)})
	run := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	var agent api.Agent
	e.ok(200, "POST", "/api/v1/agents", e.admin, api.RegisterAgent{Name: "a1"}, &agent)
	var sched api.Schedule
	e.ok(201, "POST", "/api/v1/schedules", e.admin, api.CreateSchedule{FlowID: reg.Flow.ID, Interval: api.Duration(3600e9)}, &sched)
	var tok api.NewToken
	e.ok(201, "POST", "/api/v1/tokens", e.admin, api.CreateToken{Name: "t", Role: "developer"}, &tok)
	ids := map[string]string{"/flows/": reg.Flow.ID, "/flow_versions/": reg.Version.ID, "/flow_runs/": run.ID,
		"/tokens/": tok.Token.ID, "/agents/": agent.ID, "/schedules/": sched.ID}
	return func(path string) string {
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
		return api.Prefix + path
	}
}

// wrongValue returns a JSON value of another type than t takes.
func wrongValue(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "12"
	case reflect.Bool:
		return `"yes"`
	case reflect.Int, reflect.Int64, reflect.Float64:
		if t.Name() == "Duration" {
			return `"forever"`
		}
		return `"many"`
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 { // json.RawMessage takes anything
			return ""
		}
		return `{"a":1}`
	case reflect.Struct:
		return `[1, 2]`
	case reflect.Map:
		return `"not an object"`
	}
	return ""
}

// TestBadInputOnEveryRoute sends every route with a body malformed JSON,
// wrong types, unknown fields, oversized and empty bodies: each answer is a
// 400 whose message names the problem. Every route without a token is 401.
func TestBadInputOnEveryRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := fixture(t, e)
	for _, rt := range api.Routes {
		p := path(rt.Path)
		t.Run(rt.Method+strings.ReplaceAll(rt.Path, "/", "_"), func(t *testing.T) {
			e.fails(401, rt.Method, p, "", nil, "Authorization")
			if rt.Request == nil {
				return
			}
			limit := api.MaxBodyBytes
			if rt.Large {
				limit = api.MaxLargeBodyBytes
			}
			token := e.admin
			cases := []struct{ name, body, want string }{
				{"malformed", `{"name": `, "not valid JSON"},
				{"syntax", `{"name" 1}`, "not valid JSON"},
				{"empty", ``, "empty"},
				{"array", `[1]`, "must be a JSON object"},
				{"unknown field", `{"nonsense_field": 1}`, `unknown field "nonsense_field"`},
				{"two values", `{} {}`, "more than one"},
				{"oversized", `{"x": "` + strings.Repeat("a", limit) + `"}`, fmt.Sprintf("larger than %d bytes", limit)},
			}
			typ := reflect.TypeOf(rt.Request)
			for i := range typ.NumField() {
				f := typ.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if v := wrongValue(f.Type); v != "" {
					cases = append(cases, struct{ name, body, want string }{"wrong type of " + name, `{"` + name + `": ` + v + `}`, name})
				}
			}
			for _, c := range cases {
				res := e.do(rt.Method, p, token, c.body)
				if res.status != 400 {
					t.Errorf("%s: %v, want 400", c.name, res)
					continue
				}
				if d := res.err(); d.Code != "invalid" || !strings.Contains(d.Message, c.want) {
					t.Errorf("%s: error %+v does not say %q", c.name, d, c.want)
				}
			}
		})
	}
	// A wrong method on a known path is a JSON 405, an unknown path a 404.
	res := e.do("PATCH", "/api/v1/flow_runs", e.admin, nil)
	if res.status != 405 || !strings.Contains(res.err().Message, "use GET or POST") && !strings.Contains(res.err().Message, "use POST or GET") {
		t.Errorf("PATCH /flow_runs = %v", res)
	}
	e.fails(404, "GET", "/api/v1/nothing", e.admin, nil, "no route")
}

// FuzzAPI sends arbitrary requests: whatever they are, the answer is never
// a 5xx, and an error answer is the JSON error body.
func FuzzAPI(f *testing.F) {
	e := newEnv(f)
	path := fixture(f, e)
	for i, rt := range api.Routes {
		body := ""
		if rt.Request != nil {
			data, _ := json.Marshal(rt.Request)
			body = string(data)
		}
		f.Add(i, "", body)
		f.Add(i, "?limit=-1&after=x&wait=1ms&state=Nope&follow=maybe", `{"spec":{"spec_version":1},"state":{"kind":"Bogus"}}`)
		f.Add(i, "/../../x", "\x00\xff")
	}
	f.Fuzz(func(t *testing.T, route int, suffix, body string) {
		if route < 0 {
			route = -route
		}
		rt := api.Routes[route%len(api.Routes)]
		p := path(rt.Path)
		if !strings.ContainsFunc(suffix, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '#' || r == '%' }) {
			p += suffix // a URL the HTTP client can send
		}
		if strings.Contains(p, "follow") || strings.Contains(p, "wait=") && !strings.Contains(p, "wait=0s") {
			return // streams and long waits are tested elsewhere
		}
		fe := *e
		fe.t = t
		res := fe.do(rt.Method, p, e.admin, body)
		if res.status >= 500 {
			t.Fatalf("%s %s %q = %v", rt.Method, p, body, res)
		}
		if res.status >= 400 && res.err().Message == "" {
			t.Fatalf("%s %s %q = %v: not a JSON error", rt.Method, p, body, res)
		}
	})
}
