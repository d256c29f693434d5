// Command hcflows is the flow program the health check tests build. What
// it registers depends on the environment of the machine it runs on, as a
// careless program's might:
//
//   - HCFLOWS_BLOCK set: it never answers (a build's health check must
//     not hang on it);
//   - HCFLOWS_EXTRA_TASK set: flow report gets a task "extra", registered
//     only then, so specs saved on such a machine name a task that the
//     image's program (which runs without the variable) lacks.
//   - HCFLOWS_ARCHIVE_STORE set: a flow archive with a checkpointed task
//     whose results go to that store URL.
//
// Flow ingest declares the environment variable INGEST_REGION, the
// agent-provided INGEST_NODE and the secret INGEST_TOKEN.
package main

import (
	"context"
	"os"
	"time"

	"github.com/reevehq/reeve"
)

var fetch = reeve.NewTask0("hcflows.fetch", func(context.Context) (int, error) { return 1, nil })

var load = reeve.NewTask0("hcflows.load", func(context.Context) (int, error) { return 2, nil }, reeve.Checkpoint())

var archive = reeve.NewTask0("hcflows.archive", func(context.Context) (int, error) { return 3, nil }, reeve.Checkpoint())

func main() {
	if os.Getenv("HCFLOWS_BLOCK") != "" {
		time.Sleep(time.Hour) // a program that never answers
	}
	report := reeve.NewFlow("report")
	fetch.Bind(report, reeve.Name("fetch"))
	if os.Getenv("HCFLOWS_EXTRA_TASK") != "" {
		extra := reeve.NewTask0("hcflows.extra", func(context.Context) (int, error) { return 4, nil })
		extra.Bind(report, reeve.Name("extra"))
	}

	ingest := reeve.NewFlow("ingest", reeve.Env("INGEST_REGION"), reeve.EnvFromAgent("INGEST_NODE"), reeve.Secrets("INGEST_TOKEN"))
	load.Bind(ingest, reeve.Name("load"))

	flows := []*reeve.Flow{report, ingest}
	if url := os.Getenv("HCFLOWS_ARCHIVE_STORE"); url != "" {
		a := reeve.NewFlow("archive", reeve.Results(url))
		archive.Bind(a, reeve.Name("archive"))
		flows = append(flows, a)
	}
	reeve.Main(flows...)
}
