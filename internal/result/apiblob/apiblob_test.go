package apiblob_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/result"
	"github.com/reevehq/reeve/internal/result/apiblob"
	"github.com/reevehq/reeve/internal/secret"
	"github.com/reevehq/reeve/internal/server"
	"github.com/reevehq/reeve/internal/store/sqlite"
	"github.com/reevehq/reeve/internal/testenv"

	"gocloud.dev/gcerrors"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is a real Reeve server on SQLite, over loopback HTTP, with an admin
// client.
type env struct {
	url   string
	admin *client.Client
}

func newEnv(t *testing.T, cfg server.Config) *env {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "reeve.db"))
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Store, cfg.Sealer = st, secret.NewBox(secret.NewKey())
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	adminSecret, _, err := srv.Bootstrap(ctx, "")
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{url: ts.URL, admin: newClient(t, ts.URL, adminSecret)}
}

func newClient(t *testing.T, url, token string) *client.Client {
	t.Helper()
	c, err := client.New(url, token)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

// run creates a run of a flow in project ("" is the default) and returns
// it with a client that carries its run token.
func (e *env) run(t *testing.T, project string) (api.FlowRun, *client.Client) {
	t.Helper()
	ctx := t.Context()
	reg, err := e.admin.RegisterFlow(ctx, api.RegisterFlow{
		Project: project,
		Spec:    json.RawMessage(`{"spec_version":1,"name":"etl","tasks":[{"id":"a","task":"a"}]}`),
		Storage: api.Storage{Kind: "local", Path: "/usr/local/bin/etl"},
	})
	if err != nil {
		t.Fatalf("RegisterFlow: %v", err)
	}
	created, err := e.admin.CreateFlowRun(ctx, api.CreateFlowRun{FlowID: reg.Flow.ID})
	if err != nil {
		t.Fatalf("CreateFlowRun: %v", err)
	}
	minted, err := e.admin.MintRunToken(ctx, created.FlowRun.ID)
	if err != nil {
		t.Fatalf("MintRunToken: %v", err)
	}
	return created.FlowRun, newClient(t, e.url, minted.Secret)
}

// The tests below that go through apiblob.Register share the process-wide
// registration (one process runs one flow run), so they do not run in
// parallel with each other.

func TestStoreThroughTheServer(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, server.Config{})
	run, runner := e.run(t, "")
	apiblob.Register(runner, run.ID)

	st, err := result.Open(ctx, apiblob.URL)
	if err != nil {
		t.Fatalf("Open(%s): %v", apiblob.URL, err)
	}
	if st.URL() != apiblob.URL {
		t.Errorf("URL() = %q, want %q unchanged", st.URL(), apiblob.URL)
	}

	key := "etl/" + run.ID + "/transform/3.json"
	value := []byte(`{"rows": [1, 2, 3], "note": "é"}` + "\x00\xff")
	before := time.Now().Add(-time.Second)
	if err := st.Put(ctx, key, value); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := st.Get(ctx, key)
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("Get = %q, %v; want %q", got, err, value)
	}
	mt, ok, err := st.ModTime(ctx, key)
	if err != nil || !ok || mt.Before(before) || mt.After(time.Now().Add(time.Second)) {
		t.Errorf("ModTime = %v, %v, %v; want about now", mt, ok, err)
	}
	_, at, err := e.admin.GetResult(ctx, run.ID, key)
	if err != nil || !at.Equal(mt) {
		t.Errorf("the server's time of the result = %v, %v; want ModTime %v", at, err, mt)
	}

	// Missing: result.ErrNotFound from Get, ok=false from ModTime.
	_, err = st.Get(ctx, "etl/"+run.ID+"/nothing.json")
	if !errors.Is(err, result.ErrNotFound) {
		t.Errorf("Get of a missing key = %v, want result.ErrNotFound", err)
	}
	if _, ok, err := st.ModTime(ctx, "etl/nothing.json"); ok || err != nil {
		t.Errorf("ModTime of a missing key = %v, %v; want not ok, no error", ok, err)
	}

	// Over the limit: the server's message arrives whole.
	err = st.Put(ctx, "etl/run/transform/3.json", make([]byte, 3355443))
	for _, want := range []string{
		`result "etl/run/transform/3.json" is 3.2 MB, over the server result store's limit of 1 MB`,
		`give the flow a blob store (reeve.ResultStore("s3://bucket/prefix") or a file:// directory all agents share)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Put of 3.2 MB = %v, want it to say %q", err, want)
		}
	}
	t.Logf("over the limit: %v", err)
	if !errors.Is(err, reeve.ErrInvalid) || gcerrors.Code(err) != gcerrors.InvalidArgument {
		t.Errorf("Put of 3.2 MB = %v (code %v), want reeve.ErrInvalid and InvalidArgument", err, gcerrors.Code(err))
	}

	// Registering another run (of another project) moves the store that
	// is already open to it: its results are fenced by the run's project.
	if _, err := e.admin.CreateProject(ctx, api.CreateProject{Name: "billing"}); err != nil {
		t.Fatal(err)
	}
	otherRun, other := e.run(t, "billing")
	apiblob.Register(other, otherRun.ID)
	if _, err := st.Get(ctx, key); !errors.Is(err, result.ErrNotFound) {
		t.Errorf("a run of project billing read the default project's result: %v, want result.ErrNotFound", err)
	}
	// Its token does not reach the other run's routes either.
	apiblob.Register(other, run.ID)
	if _, err := st.Get(ctx, key); gcerrors.Code(err) != gcerrors.PermissionDenied || !errors.Is(err, reeve.ErrForbidden) {
		t.Errorf("Get with another run's token = %v (code %v), want PermissionDenied", err, gcerrors.Code(err))
	}
	// A sibling run of the first run's project shares its results.
	sibling, sib := e.run(t, "")
	apiblob.Register(sib, sibling.ID)
	if got, err := st.Get(ctx, key); err != nil || !bytes.Equal(got, value) {
		t.Errorf("a sibling run's Get = %q, %v; want the result", got, err)
	}
}

func TestEngineCachesThroughTheServer(t *testing.T) {
	e := newEnv(t, server.Config{})
	var calls atomic.Int32
	square := reeve.NewTask1("apiblob_test.square", func(_ context.Context, n int) (int, error) {
		calls.Add(1)
		return n * n, nil
	}, reeve.CacheFor(time.Hour))
	keep := reeve.NewTask1("apiblob_test.keep", func(_ context.Context, n int) (int, error) {
		return n + 1, nil
	}, reeve.Checkpoint())
	f := reeve.NewFlow("etl")
	sq := square.Bind(f, reeve.Param(f, "n", reeve.Default(7)), reeve.Name("square"))
	keep.Bind(f, sq, reeve.Name("keep"))

	runOnce := func() *reeve.FlowRun {
		t.Helper()
		run, runner := e.run(t, "")
		apiblob.Register(runner, run.ID)
		fr, err := f.Run(t.Context(), reeve.RunOptions{Results: apiblob.URL, FlowRunID: run.ID})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if fr.State().Kind != reeve.Success {
			t.Fatalf("run %s: %s", run.ID, fr.State())
		}
		return fr
	}

	first := runOnce()
	kept, _ := first.TaskRun("keep")
	if r := kept.State.Result; r == nil || r.Store != apiblob.URL || !strings.Contains(r.Key, first.ID()) {
		t.Fatalf("the checkpoint of keep = %+v, want it in %s under the run's key", r, apiblob.URL)
	}
	data, _, err := e.admin.GetResult(t.Context(), first.ID(), kept.State.Result.Key)
	if err != nil || string(data) != "50" {
		t.Errorf("the server holds %q, %v for keep's checkpoint; want 50", data, err)
	}

	second := runOnce()
	sqRun, _ := second.TaskRun("square")
	if sqRun.State.Kind != reeve.Cached || !strings.Contains(sqRun.State.Message, apiblob.URL) {
		t.Errorf("square in the second run: %s (%q), want Cached from %s", sqRun.State.Kind, sqRun.State.Message, apiblob.URL)
	}
	if calls.Load() != 1 {
		t.Errorf("square ran %d times in two runs, want 1 (the second reads the cache)", calls.Load())
	}
	if k, _ := second.TaskRun("keep"); k.State.Result == nil || k.State.Result.Value != 50 {
		t.Errorf("keep in the second run: %+v, want 50 from the cached 49", k.State)
	}
}

func TestNewBucketWithoutRegister(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t, server.Config{MaxResultBytes: 10})
	run, runner := e.run(t, "")
	b := apiblob.NewBucket(runner, run.ID)
	defer b.Close()
	if err := b.WriteAll(ctx, "a/b.json", []byte("0123456789"), nil); err != nil {
		t.Fatalf("WriteAll: %v", err)
	}
	r, err := b.NewRangeReader(ctx, "a/b.json", 2, 3, nil)
	if err != nil {
		t.Fatalf("NewRangeReader: %v", err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil || buf.String() != "234" || r.Size() != 10 {
		t.Errorf("range 2+3 = %q (size %d), %v; want \"234\" of 10", buf.String(), r.Size(), err)
	}
	r.Close()
	if err := b.Copy(ctx, "a/c.json", "a/b.json", nil); err != nil {
		t.Errorf("Copy: %v", err)
	}
	if err := b.WriteAll(ctx, "a/big.json", []byte("0123456789!"), nil); gcerrors.Code(err) != gcerrors.InvalidArgument ||
		!strings.Contains(err.Error(), "limit of 10 bytes") {
		t.Errorf("WriteAll of 11 bytes over a limit of 10 = %v, want InvalidArgument naming the limit", err)
	}
	if err := b.Delete(ctx, "a/b.json"); gcerrors.Code(err) != gcerrors.Unimplemented {
		t.Errorf("Delete = %v, want Unimplemented", err)
	}
	if _, err := b.List(nil).Next(ctx); gcerrors.Code(err) != gcerrors.Unimplemented {
		t.Errorf("List = %v, want Unimplemented", err)
	}
	if _, err := b.ReadAll(ctx, "a/missing.json"); gcerrors.Code(err) != gcerrors.NotFound {
		t.Errorf("ReadAll of a missing key = %v, want NotFound", err)
	}
	if ok, err := b.Exists(ctx, "a/c.json"); !ok || err != nil {
		t.Errorf("Exists of the copy = %v, %v", ok, err)
	}
}

func TestOtherURLsAreRefused(t *testing.T) {
	t.Parallel()
	o := &apiblob.URLOpener{}
	for _, raw := range []string{"reeve://elsewhere", "reeve://server/prefix", "reeve://server?x=1"} {
		u, _ := urlParse(raw)
		if _, err := o.OpenBucketURL(t.Context(), u); err == nil || !strings.Contains(err.Error(), apiblob.URL) {
			t.Errorf("OpenBucketURL(%s) = %v, want an error naming %s", raw, err, apiblob.URL)
		}
	}
}

var urlParse = url.Parse
