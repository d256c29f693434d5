package execute_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/execute"
	"github.com/reevehq/reeve/internal/result"
	"github.com/reevehq/reeve/internal/result/apiblob"
	"github.com/reevehq/reeve/internal/state"
)

// TestDeferredResults: small results ride along with the task-run states
// that name them, however many there are (more than one request can
// carry), a large one is written on its own, and every one reaches the
// server, ahead of its state.
//
// Not parallel: apiblob's registration is process-wide.
func TestDeferredResults(t *testing.T) {
	e := newEnv(t, 0)
	g := newGraph("deferred")
	g.task("a", func(ctx context.Context) (int, error) { return 1, nil })
	reg := e.register(g.spec())
	run, token := e.claim(reg.Flow.ID, "")
	c := newCounter()
	cl := e.client(token, client.WithHTTPClient(&http.Client{Transport: c}))
	rep := execute.NewReporter(execute.ReporterConfig{Client: cl, FlowRunID: run.ID, Attempt: run.Attempt, FlushEvery: time.Hour, Delivered: apiblob.Delivered})
	defer rep.Close(t.Context())
	apiblob.RegisterDeferred(cl, run.ID, rep, api.DefaultMaxResultBytes)
	st, err := result.Open(t.Context(), apiblob.URL)
	if err != nil {
		t.Fatal(err)
	}

	// 300 results of 60 KB (about 24 MB on the wire, in base64, more than
	// one request may carry), all written before the first state that
	// names one is queued, as parallel tasks can.
	const n = 300
	value := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 60<<10) }
	key := func(i int) string { return fmt.Sprintf("deferred/%s/t/%d.bin", run.ID, i) }
	for i := range n {
		if err := st.Put(t.Context(), key(i), value(i)); err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		// This process reads back what it wrote before it was sent.
		if got, err := st.Get(t.Context(), key(i)); err != nil || !bytes.Equal(got, value(i)) {
			t.Fatalf("Get %d before delivery: %d bytes, %v", i, len(got), err)
		}
	}
	for i := range n {
		rep.TaskRunState(t.Context(), engine.TaskRunRef{Task: "t", Index: i}, state.State{Kind: state.Success, Time: time.Now(),
			Result: &state.Result{Store: apiblob.URL, Key: key(i), Serializer: "bin"}})
	}
	// A large result is written by a request of its own, at once.
	big := bytes.Repeat([]byte("z"), apiblob.MaxDeferred+1)
	if err := st.Put(t.Context(), "deferred/big.bin", big); err != nil {
		t.Fatal(err)
	}
	if got := c.count("PUT big.bin"); got != 1 {
		t.Errorf("the large result took %d requests of its own, want 1", got)
	}
	if err := rep.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := c.count("POST task_run_states"); got < 3 {
		t.Errorf("%d state requests carried %d KB of results: want them spread over several requests", got, n*60)
	}
	for i := range n {
		got, _, err := e.admin.GetResult(t.Context(), run.ID, key(i))
		if err != nil || !bytes.Equal(got, value(i)) {
			t.Fatalf("result %d on the server: %d bytes, %v", i, len(got), err)
		}
	}
	if got, _, err := e.admin.GetResult(t.Context(), run.ID, "deferred/big.bin"); err != nil || len(got) != len(big) {
		t.Errorf("the large result on the server: %d bytes, %v", len(got), err)
	}
	trs := e.taskRuns(t, run.ID)
	if len(trs) != n {
		t.Errorf("%d task runs on the server, want %d", len(trs), n)
	}
}
