package execute_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/execute"
	"github.com/reevehq/reeve/internal/state"
)

// BenchmarkReporter measures what the engine pays per reported state and
// log line: the reporter only queues (its sender, here, finds no server).
func BenchmarkReporter(b *testing.B) {
	c, err := client.New("http://127.0.0.1:1", "")
	if err != nil {
		b.Fatal(err)
	}
	r := execute.NewReporter(execute.ReporterConfig{Client: c, FlowRunID: "bench", FlushEvery: time.Hour})
	defer r.Close(canceled())
	defer r.Abandon(errors.New("benchmark over"))
	ref := engine.TaskRunRef{RunRef: engine.RunRef{Flow: "bench", FlowRunID: "bench"}, Task: "t", Index: -1}
	s := state.State{Kind: state.Running, Time: time.Now()}
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, "a line", 0)
	rec.AddAttrs(slog.Int("i", 1), slog.String("k", "v"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.TaskRunState(ctx, ref, s)
		r.Log(ctx, ref, rec)
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
