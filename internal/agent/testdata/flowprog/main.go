// Command flowprog is a stand-in flow program for the agent's tests: it
// speaks the environment contract (REEVE_API_URL, REEVE_API_TOKEN,
// REEVE_FLOW_RUN_ID) with the client, as the real runner (`execute`) does,
// and behaves as FLOWPROG_MODE says. It writes its files in FLOWPROG_DIR.
//
//	ok          write its arguments and environment to DIR/env-RUNID, print a
//	            line on stdout and one on stderr, set Running, then Success
//	wait        set Running, write its pid to DIR/started-RUNID, wait for
//	            DIR/release, then set Success
//	exit-before print a line on stderr and exit 3 without setting Running
//	crash       set Running, print a panic on stderr, exit 2
//	crash-wait  set Running, write its pid to DIR/started-RUNID, wait for
//	            DIR/release, then exit 2 without finishing the run
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/state"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] != "execute" {
		fmt.Fprintln(os.Stderr, "usage: flowprog execute")
		os.Exit(64)
	}
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "flowprog:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	id := os.Getenv("REEVE_FLOW_RUN_ID")
	dir := os.Getenv("FLOWPROG_DIR")
	c, err := client.New(os.Getenv("REEVE_API_URL"), os.Getenv("REEVE_API_TOKEN"))
	if err != nil {
		return err
	}
	setState := func(k state.Kind) error {
		d, err := c.FlowRun(ctx, id)
		if err != nil {
			return err
		}
		_, err = c.SetFlowRunState(ctx, id, api.SetState{State: state.State{Kind: k, Time: time.Now()}, ExpectVersion: d.FlowRun.Version})
		return err
	}
	waitRelease := func() {
		pid := []byte(strconv.Itoa(os.Getpid()))
		if err := os.WriteFile(filepath.Join(dir, "started-"+id), pid, 0o644); err != nil {
			panic(err)
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "release")); err == nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	switch mode := os.Getenv("FLOWPROG_MODE"); mode {
	case "ok":
		env := slices.Sorted(slices.Values(os.Environ()))
		data := "args=" + strings.Join(os.Args[1:], " ") + "\n" + strings.Join(env, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(dir, "env-"+id), []byte(data), 0o644); err != nil {
			return err
		}
		fmt.Println("hello from stdout")
		fmt.Fprintln(os.Stderr, "hello from stderr")
		if err := setState(state.Running); err != nil {
			return err
		}
		return setState(state.Success)
	case "wait":
		if err := setState(state.Running); err != nil {
			return err
		}
		waitRelease()
		return setState(state.Success)
	case "wait-submitted": // started, but slow to boot: the run stays Submitted until released
		waitRelease()
		if err := setState(state.Running); err != nil {
			return err
		}
		return setState(state.Success)
	case "exit-before":
		fmt.Fprintln(os.Stderr, "cannot read the flow spec: boom")
		os.Exit(3)
	case "crash":
		if err := setState(state.Running); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "panic: crashed on purpose")
		fmt.Fprintln(os.Stderr, "goroutine 1 [running]:")
		os.Exit(2)
	case "crash-wait":
		if err := setState(state.Running); err != nil {
			return err
		}
		waitRelease()
		os.Exit(2)
	default:
		return fmt.Errorf("unknown FLOWPROG_MODE %q", mode)
	}
	return nil
}
