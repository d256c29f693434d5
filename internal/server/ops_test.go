package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/reevehq/reeve/api"
)

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(200, "GET", "/healthz", "", nil, nil)
	e.ok(200, "GET", "/readyz", "", nil, nil)
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("f", "")})
	e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	e.fails(404, "GET", "/api/v1/flow_runs/nope", e.admin, nil)

	res := e.do("GET", "/metrics", "", nil)
	body := string(res.body)
	for _, want := range []string{
		`reeve_http_requests_total{code="201",method="POST",route="/flow_runs"} 1`,
		`reeve_http_requests_total{code="404",method="GET",route="/flow_runs/{id}"} 1`,
		`reeve_http_request_duration_seconds_bucket{method="POST",route="/flows"`,
		`reeve_flow_runs{state="Scheduled"} 1`,
		`reeve_claim_latency_seconds_count 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.do("GET", "/api/v1/openapi.json", "", nil)
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(res.body, &doc); err != nil {
		t.Fatal(err)
	}
	// Every route of the document is served (not a 404 "no route").
	for path, ops := range doc.Paths {
		for method := range ops {
			r := e.do(strings.ToUpper(method), path, e.admin, nil)
			if r.status == 404 && strings.Contains(r.err().Message, "no route") {
				t.Errorf("%s %s is in the document but not served", method, path)
			}
		}
	}
	if len(doc.Paths) < 20 {
		t.Errorf("the document has %d paths", len(doc.Paths))
	}
}
