package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
)

// waitFor fails the test if ch does not deliver within d.
func waitFor[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
		panic("unreachable")
	}
}

// TestServeHTTPShutdown checks the shutdown of serveHTTP: an ordinary
// request in flight finishes with its context intact, while a long-lived
// one (a claim) has its context cancelled at once; then serveHTTP returns.
func TestServeHTTPShutdown(t *testing.T) {
	t.Parallel()
	slowIn, longIn := make(chan struct{}), make(chan struct{})
	longEnded := make(chan struct{})
	release := make(chan struct{})
	var slowCtxErr error
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/claim") {
			close(longIn)
			<-r.Context().Done()
			close(longEnded)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		close(slowIn)
		<-release
		slowCtxErr = r.Context().Err()
		io.WriteString(w, "finished")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serveHTTP(ctx, ln, h, time.Minute, slog.New(slog.DiscardHandler)) }()

	base := "http://" + ln.Addr().String() + api.Prefix
	type answer struct {
		status int
		body   string
		err    error
	}
	get := func(method, url string) <-chan answer {
		ch := make(chan answer, 1)
		go func() {
			req, _ := http.NewRequestWithContext(t.Context(), method, url, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				ch <- answer{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- answer{resp.StatusCode, string(b), err}
		}()
		return ch
	}
	slow := get("GET", base+"/projects")
	long := get("POST", base+"/agents/a1/claim")
	waitFor(t, slowIn, 10*time.Second, "the slow request to reach its handler")
	waitFor(t, longIn, 10*time.Second, "the claim to reach its handler")

	cancel() // as the first SIGINT does
	waitFor(t, longEnded, 10*time.Second, "the claim's context to end when the shutdown starts")
	if a := waitFor(t, long, 10*time.Second, "the claim's answer"); a.err != nil || a.status != http.StatusNoContent {
		t.Fatalf("claim answered %d, %v; want 204", a.status, a.err)
	}
	select {
	case err := <-served:
		t.Fatalf("serveHTTP returned (%v) while a request was in flight", err)
	default:
	}

	close(release)
	a := waitFor(t, slow, 10*time.Second, "the slow request's answer")
	if a.err != nil || a.status != http.StatusOK || a.body != "finished" {
		t.Fatalf("slow request answered %d %q, %v; want 200 finished", a.status, a.body, a.err)
	}
	if slowCtxErr != nil {
		t.Errorf("the slow request's context ended during the shutdown: %v", slowCtxErr)
	}
	if err := waitFor(t, served, 10*time.Second, "serveHTTP to return"); err != nil {
		t.Fatalf("serveHTTP: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts connections after the shutdown")
	}
}

// TestServeHTTPShutdownTimeout checks that a request still running after
// the shutdown timeout is cut off and reported.
func TestServeHTTPShutdownTimeout(t *testing.T) {
	t.Parallel()
	in := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(in)
		<-release
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- serveHTTP(ctx, ln, h, 50*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+ln.Addr().String()+"/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, in, 10*time.Second, "the request to reach its handler")
	cancel()
	err = waitFor(t, served, 10*time.Second, "serveHTTP to return")
	if err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Fatalf("serveHTTP = %v; want an error saying requests were cut off", err)
	}
	waitFor(t, done, 10*time.Second, "the client to see its connection closed")
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestServerGracefulShutdown starts `reeve server` in-process, follows a
// flow run's logs (a stream that would last as long as the run), cancels
// the context as SIGINT does, and checks that the stream ends at once and
// cleanly (the whole response, not a cut connection) and that the server
// exits 0.
func TestServerGracefulShutdown(t *testing.T) {
	t.Parallel()
	const admin = "reeve_test0123456789abcdefghijklmnopqrstuvwxyz"
	env := map[string]string{"REEVE_ADMIN_TOKEN": admin}
	var stdout, stderr syncBuffer
	addr := make(chan string, 1)
	c := New(Options{
		Stdin:     strings.NewReader(""),
		Stdout:    &stdout,
		Stderr:    &stderr,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Listening: func(a string) { addr <- a },
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	exited := make(chan int, 1)
	go func() {
		exited <- c.Run(ctx, []string{"server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--shutdown-timeout", "20s"})
	}()
	var a string
	select {
	case a = <-addr:
	case code := <-exited:
		t.Fatalf("reeve server exited with %d before listening:\n%s", code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("reeve server did not listen within 30s")
	}
	if want := "reeve server listening on http://" + a + "\n"; stdout.String() != want {
		t.Errorf("stdout = %q; want %q", stdout.String(), want)
	}

	// A run with a log line.
	cl, err := client.New("http://"+a, admin)
	if err != nil {
		t.Fatal(err)
	}
	spec := json.RawMessage(`{"spec_version": 1, "name": "hello", "tasks": [{"id": "greet", "task": "greet"}]}`)
	if _, err := cl.RegisterFlow(t.Context(), api.RegisterFlow{Spec: spec, Storage: api.Storage{Kind: "local", Path: "/bin/true"}}); err != nil {
		t.Fatal(err)
	}
	run, err := cl.CreateFlowRun(t.Context(), api.CreateFlowRun{Flow: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.AppendLogs(t.Context(), run.FlowRun.ID, []api.LogLine{{Level: "INFO", Message: "first"}}); err != nil {
		t.Fatal(err)
	}

	// Follow its logs; once the first line came, the stream is in flight.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+a+api.Prefix+"/flow_runs/"+run.FlowRun.ID+"/logs?follow=true", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("follow logs: %s", resp.Status)
	}
	body := bufio.NewReader(resp.Body)
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			t.Fatalf("read the stream: %v", err)
		}
		if strings.Contains(line, `"message":"first"`) {
			break
		}
	}

	cancel() // the first SIGINT
	rest := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(body) // ends at the end of the chunked response, or fails if cut
		rest <- err
	}()
	if err := waitFor(t, rest, 20*time.Second, "the log stream to end after the shutdown started"); err != nil {
		t.Fatalf("the log stream was cut instead of ended: %v", err)
	}
	if code := waitFor(t, exited, 20*time.Second, "reeve server to exit"); code != ExitOK {
		t.Fatalf("reeve server exited with %d; want 0:\n%s", code, stderr.String())
	}
	for _, want := range []string{"shutting down", "server stopped", "scheduler and run monitor stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the server's log lacks %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "level=ERROR") {
		t.Errorf("the server logged errors:\n%s", stderr.String())
	}
}
