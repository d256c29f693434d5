// Package pgtest runs the reeve command against a real PostgreSQL
// database: `reeve server --database-url postgres://...` and
// `reeve server migrate-store` from SQLite to PostgreSQL. It is apart from
// package cli's tests because it needs testenv.Main to stop the cluster.
package pgtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/cli"
	"github.com/reevehq/reeve/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const admin = "reeve_pgtest0123456789abcdefghijklmnopqrstuvwxyz"

// buffer is a bytes.Buffer safe for a writer and a reader.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// run runs the reeve command in this process and returns its exit code and
// output.
func run(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errs buffer
	c := cli.New(cli.Options{
		Stdin:     strings.NewReader(""),
		Stdout:    &out,
		Stderr:    &errs,
		LookupEnv: func(string) (string, bool) { return "", false },
	})
	code = c.Run(ctx, args)
	return code, out.String(), errs.String()
}

// startServer starts `reeve server` with args and returns a client of it;
// the server stops when the test ends.
func startServer(t *testing.T, args ...string) *client.Client {
	t.Helper()
	var out, errs buffer
	addr := make(chan string, 1)
	c := cli.New(cli.Options{
		Stdin:  strings.NewReader(""),
		Stdout: &out,
		Stderr: &errs,
		LookupEnv: func(k string) (string, bool) {
			if k == "REEVE_ADMIN_TOKEN" {
				return admin, true
			}
			return "", false
		},
		Listening: func(a string) { addr <- a },
	})
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() { exited <- c.Run(ctx, append([]string{"server", "--listen", "127.0.0.1:0"}, args...)) }()
	var a string
	select {
	case a = <-addr:
	case code := <-exited:
		cancel()
		t.Fatalf("reeve server exited with %d:\n%s", code, errs.String())
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("reeve server did not listen within 60s")
	}
	t.Cleanup(func() {
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("reeve server exited with %d:\n%s", code, errs.String())
		}
	})
	cl, err := client.New("http://"+a, admin)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestMigrateStoreToPostgres fills a SQLite server, copies its database to
// PostgreSQL with migrate-store, and checks that a server on PostgreSQL
// with the same data directory (so the same secret key) serves it all: the
// runs and their logs, the tokens (revoked ones stay revoked) and the
// secrets' values, which only the same key opens.
func TestMigrateStoreToPostgres(t *testing.T) {
	t.Parallel()
	pg := testenv.Postgres(t)
	dataDir := t.TempDir()
	ctx := t.Context()

	var runID, oldToken string
	t.Run("fill", func(t *testing.T) { // the SQLite server stops at the subtest's end
		cl := startServer(t, "--data-dir", dataDir)
		spec := json.RawMessage(`{"spec_version": 1, "name": "hello", "tasks": [{"id": "greet", "task": "greet"}], "secrets": [{"name": "DB_PASSWORD"}]}`)
		if _, err := cl.RegisterFlow(ctx, api.RegisterFlow{Spec: spec, Storage: api.Storage{Kind: "local", Path: "/bin/true"}}); err != nil {
			t.Fatal(err)
		}
		r, err := cl.CreateFlowRun(ctx, api.CreateFlowRun{Flow: "hello"})
		if err != nil {
			t.Fatal(err)
		}
		runID = r.FlowRun.ID
		if err := cl.AppendLogs(ctx, runID, []api.LogLine{{Level: "INFO", Message: "before the move"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.SetSecret(ctx, "", "DB_PASSWORD", "s3cr3t"); err != nil {
			t.Fatal(err)
		}
		nt, err := cl.CreateToken(ctx, api.CreateToken{Name: "old", Role: api.RoleDeveloper})
		if err != nil {
			t.Fatal(err)
		}
		oldToken = nt.Secret
		if _, err := cl.RevokeToken(ctx, nt.Token.ID); err != nil {
			t.Fatal(err)
		}
	})
	if t.Failed() {
		return
	}

	code, stdout, stderr := run(ctx, "server", "migrate-store", "--from", "sqlite://"+filepath.Join(dataDir, "reeve.db"), "--to", pg)
	if code != 0 {
		t.Fatalf("migrate-store exited with %d:\n%s%s", code, stdout, stderr)
	}
	if !strings.HasPrefix(stdout, "Copied ") {
		t.Errorf("migrate-store output:\n%s%s", stdout, stderr)
	}
	if u, err := url.Parse(pg); err == nil {
		if pw, ok := u.User.Password(); ok && strings.Contains(stdout+stderr, pw) {
			t.Errorf("migrate-store printed the database password:\n%s%s", stdout, stderr)
		}
	}

	cl := startServer(t, "--data-dir", dataDir, "--database-url", pg)
	logs, err := cl.Logs(ctx, runID, client.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs.Logs) != 1 || logs.Logs[0].Message != "before the move" {
		t.Errorf("logs on PostgreSQL = %+v; want the line written on SQLite", logs.Logs)
	}
	// The secret opens with the same key: read it as the run does.
	rt, err := cl.MintRunToken(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	runClient, err := client.New(cl.URL(), rt.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := runClient.RunSecret(ctx, runID, "DB_PASSWORD"); err != nil || v != "s3cr3t" {
		t.Errorf("RunSecret on PostgreSQL = %q, %v; want the value set on SQLite", v, err)
	}
	old, err := client.New(cl.URL(), oldToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Projects(ctx); !errors.Is(err, reeve.ErrUnauthorized) {
		t.Errorf("a token revoked on SQLite, on PostgreSQL: %v; want unauthorized", err)
	}

	// The target is no longer empty: a second copy is refused.
	code, _, stderr = run(ctx, "server", "migrate-store", "--from", "sqlite://"+filepath.Join(dataDir, "reeve.db"), "--to", pg)
	if code != cli.ExitFailed || !strings.Contains(stderr, "empty database") {
		t.Errorf("a second migrate-store exited with %d:\n%s", code, stderr)
	}
}
