package server_test

import (
	"strings"
	"testing"

	"github.com/reevehq/reeve/api"
)

func TestSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const value = "hunter2-very-secret-value"
	dev := e.token("developer")

	var sec api.Secret
	e.ok(200, "PUT", "/api/v1/secrets/API_KEY", dev, api.SetSecret{Value: value}, &sec)
	if sec.Name != "API_KEY" || sec.CreatedAt.IsZero() {
		t.Errorf("set secret = %+v", sec)
	}
	e.ok(200, "PUT", "/api/v1/secrets/OTHER", dev, api.SetSecret{Value: "other-value"}, nil)

	// Names and times only, to every role.
	for _, tok := range []string{e.admin, dev} {
		res := e.do("GET", "/api/v1/secrets", tok, nil)
		if res.status != 200 || strings.Contains(string(res.body), value) || !strings.Contains(string(res.body), "API_KEY") {
			t.Errorf("secret list = %v, want names without values", res)
		}
	}

	// Only the run token of a run whose flow declares the secret reads it.
	declares := e.register(dev, api.RegisterFlow{Spec: specJSON("uses-key", `"secrets":[{"name":"API_KEY"}]`)})
	plain := e.register(dev, api.RegisterFlow{Spec: specJSON("no-secrets", "")})
	run := e.run(dev, api.CreateFlowRun{FlowID: declares.Flow.ID})
	other := e.run(dev, api.CreateFlowRun{FlowID: plain.Flow.ID})
	var runTok, otherTok api.NewToken
	e.ok(201, "POST", "/api/v1/flow_runs/"+run.ID+"/tokens", e.admin, nil, &runTok)
	e.ok(201, "POST", "/api/v1/flow_runs/"+other.ID+"/tokens", e.admin, nil, &otherTok)

	var got api.SecretValue
	e.ok(200, "GET", "/api/v1/flow_runs/"+run.ID+"/secrets/API_KEY", runTok.Secret, nil, &got)
	if got.Value != value {
		t.Errorf("run reads %q, want the value set", got.Value)
	}
	e.fails(403, "GET", "/api/v1/flow_runs/"+run.ID+"/secrets/OTHER", runTok.Secret, nil, `does not declare secret "OTHER"`)
	e.fails(403, "GET", "/api/v1/flow_runs/"+other.ID+"/secrets/API_KEY", otherTok.Secret, nil, `does not declare secret "API_KEY"`)
	e.fails(403, "GET", "/api/v1/flow_runs/"+run.ID+"/secrets/API_KEY", otherTok.Secret, nil)
	for _, tok := range []string{e.admin, dev} {
		res := e.fails(403, "GET", "/api/v1/flow_runs/"+run.ID+"/secrets/API_KEY", tok, nil)
		if strings.Contains(res.Message, value) {
			t.Errorf("an error shows the value: %s", res.Message)
		}
	}

	// Never in clear text in the database file.
	if raw := readDatabase(t, e.dbPath); strings.Contains(raw, value) {
		t.Error("the database file holds the secret value in clear text")
	}

	// Bad input, and delete.
	e.fails(400, "PUT", "/api/v1/secrets/API_KEY", dev, api.SetSecret{}, "value is empty")
	e.fails(400, "PUT", "/api/v1/secrets/not-an-identifier", dev, api.SetSecret{Value: "x"})
	e.fails(404, "PUT", "/api/v1/secrets/API_KEY", dev, api.SetSecret{Project: "nope", Value: "x"})
	e.ok(204, "DELETE", "/api/v1/secrets/API_KEY", dev, nil, nil)
	e.fails(404, "DELETE", "/api/v1/secrets/API_KEY", dev, nil)
	e.fails(404, "GET", "/api/v1/flow_runs/"+run.ID+"/secrets/API_KEY", runTok.Secret, nil)
}
