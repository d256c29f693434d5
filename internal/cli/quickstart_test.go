package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/client"
)

func noEnv(string) (string, bool) { return "", false }

// TestQuickstart runs the README's first command: a server, an agent,
// the example programs built and self-registered, a run of etl shown live
// with its result, and exit 0.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	var out, errb syncBuffer
	c := New(Options{Stdout: &out, Stderr: &errb, LookupEnv: noEnv})
	if code := c.Run(t.Context(), []string{"quickstart", "--examples", "../../examples"}); code != 0 {
		t.Fatalf("quickstart: exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"● Registered  the flows of 3 programs", "etl.extract        Success",
		"etl.transform      Mapped (20 mapped task runs (20 Success))", "after 2 attempts",
		"● Success (22 task runs: 22 Success)", `result of etl.load: {"rows":20,"total":736}`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("quickstart's output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestQuickstartKeep: with --keep, server and agent stay up, reachable at
// the printed URL with the printed admin token, until the command is
// stopped.
func TestQuickstartKeep(t *testing.T) {
	t.Parallel()
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c := New(Options{Stdout: &out, Stderr: &errb, LookupEnv: noEnv})
	done := make(chan int, 1)
	go func() { done <- c.Run(ctx, []string{"quickstart", "--keep", "--examples", "../../examples"}) }()
	re := regexp.MustCompile(`export REEVE_SERVER=(\S+) REEVE_TOKEN=(\S+)`)
	var m []string
	for m == nil {
		select {
		case code := <-done:
			t.Fatalf("quickstart --keep ended (exit %d) before printing the server:\n%s%s", code, out.String(), errb.String())
		case <-time.After(20 * time.Millisecond):
		}
		m = re.FindStringSubmatch(out.String())
	}
	cl, err := client.New(m[1], m[2])
	if err != nil {
		t.Fatal(err)
	}
	runs, err := cl.FlowRuns(t.Context(), client.FlowRunFilter{})
	if err != nil || len(runs.FlowRuns) != 1 {
		t.Fatalf("the kept server's runs: %v, %v", runs, err)
	}
	agents, err := cl.Agents(t.Context())
	if err != nil || len(agents) != 1 || agents[0].Name != "quickstart" {
		t.Fatalf("the kept server's agents: %v, %v", agents, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("quickstart --keep stopped with exit %d:\n%s", code, errb.String())
	}
}
