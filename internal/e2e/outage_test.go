package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/agent"
	"github.com/reevehq/reeve/internal/runner/process"
	"github.com/reevehq/reeve/internal/server"
	"github.com/reevehq/reeve/internal/state"
)

// TestServerKilledMidRunLosesNothing: `reeve server` is killed (SIGKILL)
// while a run's tasks finish and log, and started again on the same port
// and database: the run completes, and the server has every task-run state
// and every log line.
func TestServerKilledMidRunLosesNothing(t *testing.T) {
	t.Parallel()
	reeveBin := program(t, "../../cmd/reeve", "reeve")
	bin := flowsBin(t)
	dataDir, e2eDir := t.TempDir(), t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	url := "http://" + addr
	admin := server.NewTokenSecret()
	start := func() *exec.Cmd {
		cmd := exec.Command(reeveBin, "server", "--listen", addr, "--data-dir", dataDir, "--heartbeat-interval", "1s", "--lost-after", "30")
		cmd.Env = []string{"REEVE_ADMIN_TOKEN=" + admin, "HOME=" + dataDir, "PATH=" + os.Getenv("PATH")}
		logFile, err := os.OpenFile(filepath.Join(dataDir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { logFile.Close() })
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		return cmd
	}
	srv := start()
	cl, err := client.New(url, admin)
	if err != nil {
		t.Fatal(err)
	}
	ready := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for cl.Ready(t.Context()) != nil {
			if time.Now().After(deadline) {
				t.Fatal("reeve server did not become ready in 30s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ready()
	if out, err := exec.Command(bin, "register", "--server", url, "--token", admin, "--project", "default").CombinedOutput(); err != nil {
		t.Fatalf("register: %v\n%s", err, out)
	}
	procs, err := process.New(process.Config{Dir: filepath.Join(t.TempDir(), "out"), Env: []string{"E2E_DIR=" + e2eDir, "PATH=" + os.Getenv("PATH")}})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(agent.Config{Client: cl, Runner: procs, Kind: "process", Name: "a1", MaxRuns: 2, DataDir: t.TempDir(),
		StopRunsOnExit: true, ClaimWait: 5 * time.Second, FlushInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	agentDone := make(chan struct{})
	go func() { defer close(agentDone); _ = ag.Run(ctx) }()
	defer func() { cancel(); <-agentDone }()

	created, err := cl.CreateFlowRun(t.Context(), api.CreateFlowRun{Project: "default", Flow: "outage"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.FlowRun.ID
	env := &env{t: t, dir: e2eDir}
	env.waitFile("started-1", nil)

	// Kill the server; let every task finish and log while it is gone.
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = srv.Process.Wait()
	env.release()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(strings.Join(env.calls(), "\n"), "after") < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the tasks did not finish while the server was down: %v", env.calls())
		}
		time.Sleep(10 * time.Millisecond)
	}
	start()
	ready()

	var d *api.FlowRunDetail
	for deadline := time.Now().Add(60 * time.Second); ; {
		if d, err = cl.FlowRun(t.Context(), id); err == nil && d.FlowRun.State.Kind.Finished() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run did not finish after the server came back: %v %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d.FlowRun.State.Kind != state.Success || d.FlowRun.Attempt != 1 {
		t.Fatalf("run: %s at attempt %d, want Success at attempt 1\n%s", d.FlowRun.State, d.FlowRun.Attempt, history(d))
	}
	if len(d.TaskRuns) != 21 {
		t.Errorf("%d task runs, want 21", len(d.TaskRuns))
	}
	ids := map[string]string{}
	for _, tr := range d.TaskRuns {
		ids[tr.ID] = tr.Key
		h, err := cl.History(t.Context(), id, tr.ID)
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for _, s := range h {
			ks = append(ks, s.Kind.String())
		}
		if got := strings.Join(ks, " "); got != "Pending Running Success" {
			t.Errorf("task run %s went through %s, want Pending Running Success", tr.Key, got)
		}
	}
	logs, err := cl.Logs(t.Context(), id, client.LogQuery{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	marks := map[string]int{}
	for _, l := range logs.Logs {
		if l.Message == "mark" {
			marks[ids[l.TaskRunID]]++
		}
	}
	for i := range 20 {
		if key := fmt.Sprintf("after%02d", i); marks[key] != 1 {
			t.Errorf("task %s has %d \"mark\" log lines on the server, want 1", key, marks[key])
		}
	}
}
