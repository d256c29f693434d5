// Command secrets shows how a flow declares what it needs from where it
// runs, a secret and environment variables, so the health check can verify
// them before anything runs, and how Reeve keeps the secret's value out of
// logs, states and specs.
//
// Run it with the token in the environment, or in a secrets file:
//
//	REEVE_SECRET_API_TOKEN=tok-1234 API_URL=https://api.example.com go run ./examples/secrets run secrets
//
//	echo 'API_TOKEN=tok-1234' > secrets.env
//	API_URL=https://api.example.com go run ./examples/secrets run secrets --secrets-file secrets.env
//
// The task logs the token on purpose: the log line shows [REDACTED] instead.
// Check what the flow declares, one line per check; it exits 1 until both
// API_URL and the token are set:
//
//	go run ./examples/secrets healthcheck
//	REEVE_SECRET_API_TOKEN=tok-1234 API_URL=https://api.example.com go run ./examples/secrets healthcheck
package main

import (
	"cmp"
	"context"
	"os"

	"github.com/reevehq/reeve"
)

// Response is what the call reports. It never holds the token: a task's
// result is stored and shown, and Reeve redacts logs and state messages,
// not results.
type Response struct {
	URL        string `json:"url"`
	Region     string `json:"region"`
	Authorized bool   `json:"authorized"`
}

// Call reads the API token with reeve.Secret (never os.Getenv: that way it
// comes from the server in server runs, and is redacted) and the API's URL
// from the environment, then pretends to call the API.
var Call = reeve.NewTask0("secrets.call", func(ctx context.Context) (Response, error) {
	token, err := reeve.Secret(ctx, "API_TOKEN")
	if err != nil {
		return Response{}, err // names the secret and how to provide it
	}
	url := os.Getenv("API_URL")
	if url == "" {
		return Response{}, reeve.Fail("API_URL is not set: set it to the API's base URL, e.g. API_URL=https://api.example.com")
	}
	// Agents set REGION in server runs; a local run has none.
	region := cmp.Or(os.Getenv("REGION"), "local")
	// Never log a secret on purpose; this line does so to show that Reeve
	// replaces the value with [REDACTED].
	reeve.Logger(ctx).Info("calling "+url+" with Authorization: Bearer "+token, "region", region)
	return Response{URL: url, Region: region, Authorized: token != ""}, nil
})

// Flow builds the secrets flow. It declares the secret API_TOKEN, the
// environment variable API_URL, which the image or the shell must set, and
// REGION, which agents provide at run time.
func Flow() *reeve.Flow {
	f := reeve.NewFlow("secrets",
		reeve.Description("Call an API with a token: a declared secret and environment variables"),
		reeve.Secrets("API_TOKEN"),
		reeve.Env("API_URL"),
		reeve.EnvFromAgent("REGION"))
	Call.Bind(f)
	return f
}

func main() { reeve.Main(Flow()) }
