// Package server is the Reeve server's HTTP API: the routes of package api
// over a store.Store, with token authentication and per-route roles, strict
// request decoding, one table from error code to HTTP status, long-polling
// claims for agents, server-sent log streams, health checks and Prometheus
// metrics.
//
// The server holds no state of its own beyond in-process wake-ups, so
// several replicas can serve one PostgreSQL database; a replica wakes its
// waiting agents and log followers at once for changes it made itself, and
// within Config.PollInterval for changes another replica made.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/server/ui"
	"github.com/reevehq/reeve/internal/store"
)

// Sealer encrypts secret values at rest; aad binds a ciphertext to its
// secret ("projectID/name") so it cannot be moved to another one.
type Sealer interface {
	Seal(plaintext, aad []byte) []byte
	Open(sealed, aad []byte) ([]byte, error)
}

// Defaults of the run life cycle.
const (
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultMaxRecoveries     = 3
)

// Config configures a Server. Store and Sealer are required.
type Config struct {
	Store  store.Store
	Sealer Sealer
	// Logger receives request errors and server events; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Kick, if set, asks the scheduler for a pass now (after a flow is
	// registered or a schedule changes). It must not block.
	Kick func()
	// NextRuns gives a schedule's next n run times after a time, shown
	// with schedules; nil means scheduler.Next.
	NextRuns func(sc store.Schedule, after time.Time, n int) ([]time.Time, error)
	// PollInterval is how often waiting claims and log followers look for
	// changes made by other replicas; 0 means 1s.
	PollInterval time.Duration
	// MaxClaimWait caps the wait of a claim; 0 means 60s.
	MaxClaimWait time.Duration
	// HeartbeatInterval is how often runners heartbeat (the server tells
	// them in every heartbeat answer); 0 means 10s.
	HeartbeatInterval time.Duration
	// MaxRecoveries is how often the lost-run path re-queues a run before
	// it fails it; 0 means 3, negative means never re-queue.
	MaxRecoveries int
	// MaxResultBytes is the largest result the server's own result store
	// takes (a larger one is refused with a message that says to configure
	// a blob store); 0 means api.DefaultMaxResultBytes (1 MB).
	MaxResultBytes int
	// Registry receives the server's metrics; nil means a registry of
	// the server's own, served at /metrics.
	Registry *prometheus.Registry
}

// Validate names the first missing or wrong field.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("server config: Store is required")
	case c.Sealer == nil:
		return errors.New("server config: Sealer is required")
	case c.PollInterval < 0:
		return fmt.Errorf("server config: PollInterval %v is negative", c.PollInterval)
	case c.MaxClaimWait < 0:
		return fmt.Errorf("server config: MaxClaimWait %v is negative", c.MaxClaimWait)
	case c.HeartbeatInterval < 0:
		return fmt.Errorf("server config: HeartbeatInterval %v is negative", c.HeartbeatInterval)
	case c.MaxResultBytes < 0:
		return fmt.Errorf("server config: MaxResultBytes %d is negative", c.MaxResultBytes)
	}
	return nil
}

// Server serves the API. Create it with New.
type Server struct {
	store          store.Store
	sealer         Sealer
	log            *slog.Logger
	now            func() time.Time
	kick           func()
	nextTimes      func(sc store.Schedule, after time.Time, n int) ([]time.Time, error)
	poll           time.Duration
	maxWait        time.Duration
	heartbeatEvery time.Duration
	maxRecoveries  int
	maxResult      int
	hub            *hub
	metrics        *metrics
	handler        http.Handler
	ready          func(context.Context) error
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		store:          cfg.Store,
		sealer:         cfg.Sealer,
		log:            cfg.Logger,
		now:            cfg.Now,
		kick:           cfg.Kick,
		nextTimes:      cfg.NextRuns,
		poll:           cfg.PollInterval,
		maxWait:        cfg.MaxClaimWait,
		heartbeatEvery: cfg.HeartbeatInterval,
		maxRecoveries:  cfg.MaxRecoveries,
		maxResult:      cfg.MaxResultBytes,
		hub:            newHub(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.nextTimes == nil {
		s.nextTimes = scheduler.Next
	}
	if s.kick == nil {
		s.kick = func() {}
	}
	if s.poll == 0 {
		s.poll = time.Second
	}
	if s.maxWait == 0 {
		s.maxWait = 60 * time.Second
	}
	if s.heartbeatEvery == 0 {
		s.heartbeatEvery = DefaultHeartbeatInterval
	}
	if s.maxResult == 0 {
		s.maxResult = api.DefaultMaxResultBytes
	}
	switch {
	case s.maxRecoveries == 0:
		s.maxRecoveries = DefaultMaxRecoveries
	case s.maxRecoveries < 0:
		s.maxRecoveries = 0
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(reg, s.store)
	s.handler = s.routes(reg)
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// handlerFunc serves one route: it returns the answer (written as JSON with
// the route's status) or an error (written as an api.ErrorBody).
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *caller) (any, error)

// routes builds the mux: every api.Route, the OpenAPI document, health
// checks, metrics and the UI (under /ui/; / redirects there). Paths are matched first and methods second, so a
// known path with a wrong method is a JSON 405, not a 404.
func (s *Server) routes(reg *prometheus.Registry) http.Handler {
	handlers := s.handlers()
	mux := http.NewServeMux()
	byPath := map[string]map[string]api.Route{}
	var order []string
	for _, rt := range api.Routes {
		if _, ok := handlers[rt.Method+" "+rt.Path]; !ok {
			panic("server: no handler for " + rt.Method + " " + rt.Path)
		}
		if byPath[rt.Path] == nil {
			byPath[rt.Path] = map[string]api.Route{}
			order = append(order, rt.Path)
		}
		byPath[rt.Path][rt.Method] = rt
	}
	if len(handlers) != len(api.Routes) {
		panic("server: a handler serves no route of api.Routes")
	}
	for _, path := range order {
		methods := byPath[path]
		mux.HandleFunc(api.Prefix+path, func(w http.ResponseWriter, r *http.Request) {
			rt, ok := methods[r.Method]
			if !ok {
				allowed := make([]string, 0, len(methods))
				for m := range methods {
					allowed = append(allowed, m)
				}
				w.Header().Set("Allow", strings.Join(allowed, ", "))
				writeJSON(w, http.StatusMethodNotAllowed, api.ErrorBody{Error: api.ErrorDetail{
					Code: string(reeve.CodeInvalid), Message: fmt.Sprintf("%s %s is not a route: use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")),
				}})
				return
			}
			s.serve(w, r, rt, handlers[rt.Method+" "+rt.Path])
		})
	}
	mux.HandleFunc("GET "+api.Prefix+"/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(api.OpenAPI)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics.handler(reg))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, reeve.Errorf(reeve.CodeNotFound, "no route %s %s: the API is under %s (see %s/openapi.json)", r.Method, r.URL.Path, api.Prefix, api.Prefix))
	})
	h := s.recoverer(mux)
	// The UI calls this same handler in-process with the user's token, so
	// it gets exactly the API's answers and roles.
	pages, err := ui.New(ui.Config{API: h, Logger: s.log})
	if err != nil {
		panic("server: " + err.Error()) // the templates are embedded: a build bug
	}
	mux.Handle(ui.Prefix, pages)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, ui.Prefix, http.StatusFound)
	})
	return h
}

// serve authenticates the caller, checks the route's roles, runs h and
// writes its answer, recording metrics.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt api.Route, h handlerFunc) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() { s.metrics.observe(rt, sw.status, time.Since(start)) }()

	c, err := s.authenticate(r, rt)
	if err != nil {
		s.writeError(sw, r, err)
		return
	}
	out, err := h(sw, r, c)
	if err != nil && r.Context().Err() != nil {
		// The client went away or the server is shutting down: whatever
		// failed, failed for that; it is nobody's bug.
		err = reeve.Errorf(reeve.CodeUnavailable, "the request was cancelled: %v", context.Cause(r.Context()))
	}
	if err != nil {
		if sw.status != 0 { // a stream already answered
			return
		}
		s.writeError(sw, r, err)
		return
	}
	if sw.status != 0 {
		return
	}
	status := rt.Status
	if status == 0 {
		status = http.StatusOK
	}
	if ws, ok := out.(withStatus); ok {
		status, out = ws.status, ws.body
	}
	if out == nil {
		status = http.StatusNoContent
	}
	writeJSON(sw, status, out)
}

// recoverer turns a panic in a handler into a logged 500, so one bad
// request never takes the server down.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.writeError(w, r, fmt.Errorf("panic serving %s %s: %v", r.Method, r.URL.Path, v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// readyz answers 200 when the store answers, else 503.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.store.ListProjects(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready: the store does not answer", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: api.ErrorDetail{Code: string(reeve.CodeUnavailable), Message: "the store does not answer"}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets server-sent events through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
