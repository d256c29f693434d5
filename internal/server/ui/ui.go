// Package ui is the Reeve server's web interface: server-rendered
// html/template pages under /ui/, with static files embedded in the binary
// and no JavaScript build step.
//
// The UI holds no data of its own. Every page reads, and every form acts,
// through the server's own API handler, called in-process with the
// signed-in user's API token (see inProcess), so a role may do in the UI
// exactly what it may do through the API.
//
// A session is the API token in an HttpOnly, SameSite=Strict cookie
// (reeve_session). Every POST form carries a CSRF token derived from the
// session's token (see csrfToken); preferences (theme, time zone, clock)
// live in a second cookie, reeve_prefs, so the first paint is right.
package ui

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/scheduler"
)

// Prefix is the path the UI is mounted at.
const Prefix = "/ui/"

// Cookie names.
const (
	sessionCookie = "reeve_session"
	prefsCookie   = "reeve_prefs"
)

//go:embed templates/*.html templates/partials/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the UI. API is required.
type Config struct {
	// API is the server's API handler (serving /api/v1/...); the UI calls
	// it in-process.
	API http.Handler
	// Logger receives page errors; nil discards them.
	Logger *slog.Logger
	// AgentOfflineAfter is how long an agent may go unseen and still show
	// as healthy; 0 means scheduler.AgentOfflineAfter, the window the
	// server's monitor uses (tests shorten it).
	AgentOfflineAfter time.Duration
}

// Validate names the first missing field.
func (c *Config) Validate() error {
	if c.API == nil {
		return errors.New("ui config: API is required")
	}
	if c.AgentOfflineAfter < 0 {
		return fmt.Errorf("ui config: AgentOfflineAfter %v is negative", c.AgentOfflineAfter)
	}
	return nil
}

// UI serves the pages. Create it with New.
type UI struct {
	// live holds the live streams' shared readers (live.go).
	live liveHubs

	api   http.Handler
	hc    *http.Client
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
	// offline is the agents' offline window (Config.AgentOfflineAfter).
	offline time.Duration
}

// New returns the UI's handler, which serves the /ui/ subtree.
func New(cfg Config) (*UI, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u := &UI{
		api: cfg.API,
		hc:  &http.Client{Transport: inProcess{h: cfg.API}},
		log: cfg.Logger,

		offline: cmp.Or(cfg.AgentOfflineAfter, scheduler.AgentOfflineAfter),
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	u.pages = pages
	u.mux = u.routes()
	return u, nil
}

// ServeHTTP serves a request under /ui/.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	u.mux.ServeHTTP(w, r)
}

func (u *UI) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /ui/login", u.loginPage)
	mux.HandleFunc("POST /ui/login", u.login)
	mux.HandleFunc("POST /ui/logout", u.post(u.logout))
	mux.HandleFunc("GET /ui/events", u.browserEvents) // live.js: one stream of several runs (live.go)
	mux.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/dashboard", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /ui/preferences", u.page(u.preferencesPage))
	mux.HandleFunc("POST /ui/preferences", u.post(u.savePreferences))
	mux.HandleFunc("GET /ui/runs", u.page(u.runsPage))
	mux.HandleFunc("GET /ui/runs/new", u.runsNew)
	mux.HandleFunc("POST /ui/runs/bulk", u.post(u.bulkRuns))
	mux.HandleFunc("GET /ui/runs/{id}", u.page(u.runPage))
	mux.HandleFunc("GET /ui/runs/{id}/events", u.runEvents)
	mux.HandleFunc("GET /ui/runs/{id}/logs.txt", u.page(u.runLogsText))
	mux.HandleFunc("POST /ui/runs/{id}/cancel", u.post(u.cancelRun))
	mux.HandleFunc("GET /ui/runs/{id}/tasks/{key}", u.page(u.taskRunPage))
	mux.HandleFunc("POST /ui/runs/{id}/retry", u.post(u.retryRun))
	mux.HandleFunc("POST /ui/runs/{id}/rerun", u.post(u.rerunRun))
	mux.HandleFunc("GET /ui/flows", u.page(u.flowsPage))
	mux.HandleFunc("GET /ui/flows/{id}", u.page(u.flowPage))
	mux.HandleFunc("POST /ui/flows/{id}/run", u.post(u.runFlow))
	mux.HandleFunc("GET /ui/agents", u.page(u.agentsPage))
	mux.HandleFunc("GET /ui/agents/live", u.agentsLive)
	mux.HandleFunc("GET /ui/dashboard", u.page(u.dashboardPage))
	mux.HandleFunc("GET /ui/schedules", u.page(u.schedulesPage))
	mux.HandleFunc("POST /ui/schedules/{id}/pause", u.post(u.pauseSchedule))
	mux.HandleFunc("POST /ui/schedules/{id}/resume", u.post(u.resumeSchedule))
	mux.HandleFunc("POST /ui/schedules/{id}/run", u.post(u.runSchedule))
	mux.HandleFunc("GET /ui/projects", u.page(u.projectsPage))
	mux.HandleFunc("POST /ui/projects", u.post(u.createProject))
	mux.HandleFunc("GET /ui/secrets", u.page(u.secretsPage))
	mux.HandleFunc("POST /ui/secrets", u.post(u.createSecret))
	mux.HandleFunc("POST /ui/secrets/{name}/rotate", u.post(u.rotateSecret))
	mux.HandleFunc("POST /ui/secrets/{name}/delete", u.post(u.deleteSecret))
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u.render(w, r, http.StatusNotFound, "message", view{Title: "Not found", Error: "There is no page at " + r.URL.Path + "."})
	})
	return mux
}

// session is a signed-in request: its token and an API client that sends it.
type session struct {
	token string
	api   *client.Client
}

// session returns the request's session, or nil when it has none.
func (u *UI) session(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	cl, err := u.client(c.Value)
	if err != nil {
		return nil
	}
	return &session{token: c.Value, api: cl}
}

// client returns an API client that calls the API in-process with token.
func (u *UI) client(token string) (*client.Client, error) {
	return client.New("http://reeve.ui", token, client.WithHTTPClient(u.hc), client.WithUserAgent("reeve-ui"))
}

// canWrite says whether the session's role may act on runs and
// schedules (cancel, retry, create runs, pause): admin and developer.
// The API has no "who am I" route; the roles that may list secrets are
// exactly those. It decides only which buttons a page shows: the API
// still checks every action.
func canWrite(ctx context.Context, s *session) bool {
	_, err := s.api.Secrets(ctx, "")
	return err == nil
}

// csrfToken is the CSRF token of a session: base64url(HMAC-SHA256(key =
// SHA-256(token), "reeve-ui-csrf")). It is bound to the session's token,
// which a cross-site page can neither read nor set, so it needs no state.
func csrfToken(token string) string {
	key := sha256.Sum256([]byte(token))
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("reeve-ui-csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// pageFunc serves a page of a signed-in user and returns the page's
// template name and view (or an error).
type pageFunc func(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error)

// page wraps a GET page: a request without a session is sent to the login
// page, which brings the user back.
func (u *UI) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := u.session(r)
		if s == nil {
			u.toLogin(w, r)
			return
		}
		u.serve(w, r, s, fn)
	}
}

// post wraps a form action: it needs a session and the session's CSRF
// token in the form, checked in constant time; else it answers 403.
func (u *UI) post(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			u.render(w, r, http.StatusBadRequest, "message", view{Title: "Bad request", Error: "The form could not be read: " + err.Error()})
			return
		}
		s := u.session(r)
		if s == nil {
			u.render(w, r, http.StatusForbidden, "message", view{Title: "Not signed in", Error: "You are not signed in, so this form was not accepted. Sign in and try again."})
			return
		}
		got := r.PostForm.Get("csrf")
		if got == "" || !hmac.Equal([]byte(got), []byte(csrfToken(s.token))) {
			u.render(w, r, http.StatusForbidden, "message", view{Title: "Form refused", Error: "This form's security token is missing or wrong (CSRF check), so nothing was done. Reload the page and try again."})
			return
		}
		u.serve(w, r, s, fn)
	}
}

// serve runs fn and renders its page; an API refusal becomes a message
// page, an expired or revoked token a trip to the login page.
func (u *UI) serve(w http.ResponseWriter, r *http.Request, s *session, fn pageFunc) {
	v := view{SignedIn: true, CSRF: csrfToken(s.token)}
	name, err := fn(w, r, s, &v)
	if err != nil {
		if errs.CodeOf(err) == errs.CodeUnauthorized {
			clearSession(w, r)
			u.toLogin(w, r)
			return
		}
		status := statusOf(err)
		if status >= 500 {
			u.log.ErrorContext(r.Context(), "ui page failed", "path", r.URL.Path, "err", err)
		}
		v.Error = err.Error()
		if v.Title == "" {
			v.Title = http.StatusText(status)
		}
		u.render(w, r, status, "message", v)
		return
	}
	if name == "" { // fn answered itself (a redirect)
		return
	}
	u.render(w, r, v.Status, name, v)
}

// statusOf maps an API error to the status of the page that shows it.
func statusOf(err error) int {
	switch errs.CodeOf(err) {
	case errs.CodeInvalid:
		return http.StatusBadRequest
	case errs.CodeNotFound:
		return http.StatusNotFound
	case errs.CodeForbidden:
		return http.StatusForbidden
	case errs.CodeConflict:
		return http.StatusConflict
	case errs.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// toLogin redirects to the login page, which returns to this page.
func (u *UI) toLogin(w http.ResponseWriter, r *http.Request) {
	q := url.Values{}
	if r.Method == http.MethodGet && r.URL.Path != "/ui/login" {
		q.Set("next", r.URL.RequestURI())
	}
	target := "/ui/login"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext returns next if it is a path of the UI on this origin, else
// the runs list.
func safeNext(next string) string {
	const fallback = "/ui/runs"
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return fallback
	}
	p, err := url.Parse(next)
	if err != nil || p.Scheme != "" || p.Host != "" || p.User != nil || p.Opaque != "" || !strings.HasPrefix(path.Clean(p.Path)+"/", "/ui/") {
		return fallback
	}
	return next
}

// secure reports whether the request came over TLS (directly or through a
// proxy that says so), for the cookies' Secure flag.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setSession(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/ui", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/ui", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
}

// sameOrigin reports whether a form post came from this site: the login
// form, which has no session to derive a CSRF token from yet, refuses
// posts from other sites this way. Browsers say where a request came from
// in Sec-Fetch-Site; older ones send Origin, compared with the host the
// request was sent to (or the one a proxy says it was).
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default: // cross-site, same-site
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser's cross-site form post
	}
	p, err := url.Parse(o)
	if err != nil || o == "null" {
		return false
	}
	return p.Host == r.Host || p.Host == r.Header.Get("X-Forwarded-Host")
}

// loginPage shows the sign-in form.
func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, http.StatusOK, "login", view{Title: "Sign in", Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

type loginData struct {
	Next string
}

// login checks a token with an API read every role may do, then keeps it
// in the session cookie.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		u.render(w, r, http.StatusBadRequest, "message", view{Title: "Bad request", Error: "The form could not be read: " + err.Error()})
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !sameOrigin(r) {
		u.render(w, r, http.StatusForbidden, "message", view{Title: "Form refused", Error: "This sign-in form was sent from another site, so it was not accepted."})
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	fail := func(status int, msg string) {
		u.render(w, r, status, "login", view{Title: "Sign in", Error: msg, Data: loginData{Next: next}})
	}
	if token == "" {
		fail(http.StatusBadRequest, "Enter an API token (it looks like reeve_...).")
		return
	}
	cl, err := u.client(token)
	if err != nil {
		fail(http.StatusUnauthorized, "That is not an API token: copy it again (tokens look like reeve_...).")
		return
	}
	if _, err := cl.Projects(r.Context()); err != nil {
		switch errs.CodeOf(err) {
		case errs.CodeUnauthorized, errs.CodeForbidden:
			fail(http.StatusUnauthorized, "The server does not accept that token: check it, or create one with reeve token create.")
		default:
			u.log.ErrorContext(r.Context(), "ui login: the API failed", "err", err)
			fail(statusOf(err), "The server could not check the token: "+err.Error())
		}
		return
	}
	setSession(w, r, token)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session.
func (u *UI) logout(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	clearSession(w, r)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	return "", nil
}

// render writes a page with the request's preferences.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	t, ok := u.pages[name]
	if !ok {
		panic(fmt.Sprintf("ui: no page template %q", name))
	}
	v.Prefs = readPrefs(r)
	v.T = v.Prefs.formatter()
	v.Path = r.URL.Path
	if status == 0 {
		status = http.StatusOK
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "base", v); err != nil {
		u.log.ErrorContext(r.Context(), "ui render failed", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// view is what every page's template gets.
type view struct {
	Title    string
	Status   int
	SignedIn bool
	CSRF     string
	Prefs    prefs
	T        formatter
	Path     string
	Error    string // a message shown above the page, e.g. an API refusal
	Notice   string
	Data     any
}

// parsePages parses each page template with the base layout and the partials.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	// Partials (templates/partials/*.html: a page's parts, such as the run
	// page's tabs) are parsed into every page.
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/base.html", "templates/partials/*.html"))
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "base" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("ui: parse %s: %w", n, err)
		}
		pages[name] = t
	}
	return pages, nil
}
