package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/secret"
	"github.com/reevehq/reeve/internal/server"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
	"github.com/reevehq/reeve/internal/store/sqlite"
	"github.com/reevehq/reeve/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is the whole server on a temporary SQLite store, over loopback
// HTTP, with an admin token and an API client that sends it.
type env struct {
	t     testing.TB
	url   string
	admin string
	api   *client.Client
}

// newServer is the whole server on a temporary SQLite store, and its
// admin token.
func newServer(t testing.TB) (*server.Server, string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "reeve.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return serverOn(t, st)
}

// serverOn is the whole server on st, and its admin token.
func serverOn(t testing.TB, st store.Store) (*server.Server, string) {
	t.Helper()
	srv, err := server.New(server.Config{Store: st, Sealer: secret.NewBox(secret.NewKey()), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := srv.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return srv, admin
}

func newEnv(t testing.TB) *env {
	t.Helper()
	srv, admin := newServer(t)
	return envOf(t, srv, admin)
}

// envOf serves srv over loopback HTTP, with an API client of admin.
func envOf(t testing.TB, srv *server.Server, admin string) *env {
	t.Helper()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	cl, err := client.New(hs.URL, admin)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: hs.URL, admin: admin, api: cl}
}

// token creates an API token of role and returns its secret.
func (e *env) token(role string) string {
	e.t.Helper()
	nt, err := e.api.CreateToken(context.Background(), api.CreateToken{Name: role + " token", Role: role})
	if err != nil {
		e.t.Fatal(err)
	}
	return nt.Secret
}

// flow registers a flow of tasks a → b, with extra top-level spec members.
func (e *env) flow(name, extra string) api.Flow {
	e.t.Helper()
	if extra != "" {
		extra = "," + extra
	}
	spec := fmt.Sprintf(`{"spec_version":1,"name":%q,"tasks":[{"id":"a","task":"a"},{"id":"b","task":"b","after":["a"]}]%s}`, name, extra)
	reg, err := e.api.RegisterFlow(context.Background(), api.RegisterFlow{Spec: json.RawMessage(spec), Storage: api.Storage{Kind: "local", Path: "/usr/local/bin/flows"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return reg.Flow
}

// run creates a run of a flow.
func (e *env) run(flow, params string) api.FlowRun {
	e.t.Helper()
	req := api.CreateFlowRun{Flow: flow}
	if params != "" {
		req.Params = json.RawMessage(params)
	}
	out, err := e.api.CreateFlowRun(context.Background(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	return out.FlowRun
}

// setState moves a run to kind, as its runner would.
func (e *env) setState(id string, kind state.Kind, msg string) api.FlowRun {
	e.t.Helper()
	ctx := context.Background()
	det, err := e.api.FlowRun(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	run, err := e.api.SetFlowRunState(ctx, id, api.SetState{State: state.State{Kind: kind, Message: msg, Time: time.Now()}, ExpectVersion: det.FlowRun.Version})
	if err != nil {
		e.t.Fatal(err)
	}
	return *run
}

// state returns a run's current state kind.
func (e *env) state(id string) state.Kind {
	e.t.Helper()
	det, err := e.api.FlowRun(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return det.FlowRun.State.Kind
}

// logs appends log lines ("LEVEL message") to a run.
func (e *env) logs(id string, lines ...string) {
	e.t.Helper()
	var ls []api.LogLine
	for _, l := range lines {
		level, msg, _ := strings.Cut(l, " ")
		ls = append(ls, api.LogLine{Time: time.Now(), Level: level, Message: msg})
	}
	if err := e.api.AppendLogs(context.Background(), id, ls); err != nil {
		e.t.Fatal(err)
	}
}

// user is a browser without JavaScript: it keeps cookies and does not
// follow redirects, so tests see them.
type user struct {
	t  testing.TB
	e  *env
	hc *http.Client
}

func (e *env) user() *user {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &user{t: e.t, e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is an answer to a user's request.
type page struct {
	status int
	body   string
	header http.Header
}

func (p page) location() string { return p.header.Get("Location") }

// csrf is the CSRF token of the page's forms.
func (p page) csrf(t testing.TB) string {
	t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF field in the page:\n%s", p.body)
	}
	return m[1]
}

func (u *user) do(req *http.Request) page {
	u.t.Helper()
	res, err := u.hc.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		u.t.Fatal(err)
	}
	return page{status: res.StatusCode, body: string(b), header: res.Header}
}

func (u *user) get(path string) page {
	u.t.Helper()
	req, err := http.NewRequest("GET", u.e.url+path, nil)
	if err != nil {
		u.t.Fatal(err)
	}
	return u.do(req)
}

func (u *user) post(path string, form url.Values) page {
	u.t.Helper()
	req, err := http.NewRequest("POST", u.e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return u.do(req)
}

// signIn signs the user in with token and returns the runs page.
func (u *user) signIn(token string) page {
	u.t.Helper()
	p := u.post("/ui/login", url.Values{"token": {token}, "next": {"/ui/runs"}})
	if p.status != http.StatusSeeOther || p.location() != "/ui/runs" {
		u.t.Fatalf("sign in = %d %s, want 303 to /ui/runs:\n%s", p.status, p.location(), p.body)
	}
	return u.mustGet("/ui/runs")
}

// mustGet gets a page that must answer 200.
func (u *user) mustGet(path string) page {
	u.t.Helper()
	p := u.get(path)
	if p.status != http.StatusOK {
		u.t.Fatalf("GET %s = %d, want 200:\n%s", path, p.status, p.body)
	}
	return p
}

// contains fails the test unless the page holds every one of want.
func (p page) contains(t testing.TB, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(p.body, w) {
			t.Errorf("the page does not show %q:\n%s", w, p.body)
		}
	}
}

// lacks fails the test if the page holds any of bad.
func (p page) lacks(t testing.TB, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(p.body, b) {
			t.Errorf("the page shows %q, which it must not:\n%s", b, p.body)
		}
	}
}

// rows returns the run IDs of a runs list page, in order.
func (p page) rows() []string {
	var ids []string
	for _, m := range regexp.MustCompile(`<tr data-run="([^"]+)"`).FindAllStringSubmatch(p.body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}
