package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/secret"
	"github.com/reevehq/reeve/internal/server"
	"github.com/reevehq/reeve/internal/store"
	"github.com/reevehq/reeve/internal/store/postgres"
	"github.com/reevehq/reeve/internal/store/sqlite"
)

// serverFlags are the settings of `reeve server`.
type serverFlags struct {
	listen          string
	databaseURL     string
	dataDir         string
	secretKeyFile   string
	logFormat       string
	logLevel        string
	shutdownTimeout time.Duration
	scheduleRuns    int
	scheduleEvery   time.Duration
	maxResultBytes  int
	runs            runFlags
}

// runFlags are the settings of the run life cycle: heartbeats and the
// monitor that recovers lost runs.
type runFlags struct {
	heartbeat     time.Duration
	lostAfter     int
	submitTimeout time.Duration
	maxRecoveries int
	lateAfter     time.Duration
	monitorEvery  time.Duration
}

func (f *runFlags) bind(fl *pflag.FlagSet) {
	fl.DurationVar(&f.heartbeat, "heartbeat-interval", scheduler.DefaultHeartbeat, "how often runners heartbeat")
	fl.IntVar(&f.lostAfter, "lost-after", scheduler.DefaultLostAfter, "missed heartbeat intervals after which a run's runner counts as lost")
	fl.DurationVar(&f.submitTimeout, "submit-timeout", scheduler.DefaultSubmitTimeout, "how long a claimed run may wait for its runner to start before it counts as lost")
	fl.IntVar(&f.maxRecoveries, "max-recoveries", scheduler.DefaultMaxRecoveries, "how often a lost run is re-queued before it is failed (0: never)")
	fl.DurationVar(&f.lateAfter, "late-after", scheduler.DefaultLateAfter, "how long past its start a waiting run may be before its state says why")
	fl.DurationVar(&f.monitorEvery, "monitor-interval", scheduler.DefaultMonitorInterval, "time between the run monitor's passes")
	for flag, env := range map[string]string{
		"heartbeat-interval": "REEVE_HEARTBEAT_INTERVAL", "lost-after": "REEVE_LOST_AFTER",
		"submit-timeout": "REEVE_SUBMIT_TIMEOUT", "max-recoveries": "REEVE_MAX_RECOVERIES",
		"late-after": "REEVE_LATE_AFTER", "monitor-interval": "REEVE_MONITOR_INTERVAL",
	} {
		bindEnv(fl, flag, env)
	}
}

// check names the first setting out of range.
func (f *runFlags) check() error {
	switch {
	case f.heartbeat < 100*time.Millisecond:
		return usagef("--heartbeat-interval %v is too short: give 100ms or more", f.heartbeat)
	case f.lostAfter < 2:
		return usagef("--lost-after %d is too small: give 2 or more heartbeat intervals", f.lostAfter)
	case f.submitTimeout < time.Second:
		return usagef("--submit-timeout %v is too short: give 1s or more", f.submitTimeout)
	case f.maxRecoveries < 0:
		return usagef("--max-recoveries %d is negative", f.maxRecoveries)
	case f.lateAfter < time.Second:
		return usagef("--late-after %v is too short: give 1s or more", f.lateAfter)
	case f.monitorEvery < 10*time.Millisecond:
		return usagef("--monitor-interval %v is too short: give 10ms or more", f.monitorEvery)
	}
	return nil
}

// monitorConfig is the run monitor's configuration.
func (f *runFlags) monitorConfig(st store.Store, log *slog.Logger, requeued func()) scheduler.MonitorConfig {
	maxRec := f.maxRecoveries
	if maxRec == 0 {
		maxRec = -1 // the flag's 0 means never; the config's 0 means the default
	}
	return scheduler.MonitorConfig{
		Store: st, Interval: f.monitorEvery, Heartbeat: f.heartbeat, LostAfter: f.lostAfter,
		SubmitTimeout: f.submitTimeout, MaxRecoveries: maxRec, LateAfter: f.lateAfter,
		Requeued: requeued, Logger: log,
	}
}

// maxResultBytes caps --max-result-bytes: the server's result store keeps
// results in its database and takes each in one request.
const maxResultBytes = 64 << 20

// HTTP server limits. There is deliberately no WriteTimeout (nor
// ReadTimeout): agents' claims long-poll for up to a minute and log
// followers stream for as long as a run lasts, and both deadlines are per
// connection, so they would cut those off (an expired read deadline even
// cancels the request's context). Request bodies are bounded in size by the
// API handlers instead, and slow clients by ReadHeaderTimeout and
// IdleTimeout.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

func (c *CLI) serverCommand() *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Reeve server: the API, the scheduler and the store",
		Long: "Run the Reeve server. With no configuration it keeps everything in an embedded SQLite\n" +
			"database in the data directory and listens on 127.0.0.1:4200.\n\n" +
			"On its first start it creates the \"default\" project, a secret key file (unless\n" +
			"REEVE_SECRET_KEY is set; back the file up) and an admin token (unless REEVE_ADMIN_TOKEN\n" +
			"is set), which it prints once. The first SIGINT or SIGTERM shuts it down gracefully.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.runServer(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:4200", "address to listen on (host:port; port 0 picks a free one)")
	fl.StringVar(&f.databaseURL, "database-url", "", "the database: sqlite:///abs/path.db, sqlite://relative/path.db or postgres://user:password@host:5432/db (default: reeve.db in the data directory)")
	fl.StringVar(&f.dataDir, "data-dir", "", "directory of the server's files: the SQLite database and the secret key file (default: "+defaultDataDirHelp()+")")
	fl.StringVar(&f.secretKeyFile, "secret-key-file", "", "file holding the key that encrypts secrets, created if missing (default: secret.key in the data directory; REEVE_SECRET_KEY gives the key itself)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a shutdown waits for in-flight requests before cutting them off")
	bindEnv(fl, "listen", "REEVE_LISTEN")
	bindEnv(fl, "database-url", "REEVE_DATABASE_URL")
	bindEnv(fl, "data-dir", "REEVE_DATA_DIR")
	bindEnv(fl, "secret-key-file", "REEVE_SECRET_KEY_FILE")
	bindEnv(fl, "log-format", "REEVE_LOG_FORMAT")
	bindEnv(fl, "log-level", "REEVE_LOG_LEVEL")
	fl.IntVar(&f.scheduleRuns, "schedule-runs", scheduler.DefaultRuns, "how many future runs the scheduler keeps created for each schedule")
	fl.DurationVar(&f.scheduleEvery, "schedule-interval", scheduler.DefaultInterval, "time between the scheduler's passes over the schedules")
	bindEnv(fl, "shutdown-timeout", "REEVE_SHUTDOWN_TIMEOUT")
	bindEnv(fl, "schedule-runs", "REEVE_SCHEDULE_RUNS")
	bindEnv(fl, "schedule-interval", "REEVE_SCHEDULE_INTERVAL")
	fl.IntVar(&f.maxResultBytes, "max-result-bytes", api.DefaultMaxResultBytes, "the largest result the server's own result store (reeve://server) takes, in bytes; larger ones need a blob store")
	bindEnv(fl, "max-result-bytes", "REEVE_MAX_RESULT_BYTES")
	f.runs.bind(fl)
	cmd.AddCommand(c.migrateStoreCommand())
	return cmd
}

// newLogger returns the server's logger, writing to w.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q is not a level: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q is not a format: use text or json", format)
}

// database is where the server keeps its records.
type database struct {
	kind string // "sqlite" or "postgres"
	path string // sqlite: the file
	url  string // postgres: the connection URL
}

// String describes the database without a password.
func (d database) String() string {
	if d.kind == "sqlite" {
		return "sqlite " + d.path
	}
	return "postgres " + redactURL(d.url)
}

// databaseForms names the database URLs --database-url accepts.
const databaseForms = "sqlite:///abs/path/reeve.db, sqlite://relative/path/reeve.db, or postgres://user:password@host:5432/dbname (postgresql:// too)"

// parseDatabaseURL reads a database URL given as flag (--database-url);
// "" is reeve.db in dataDir.
func parseDatabaseURL(flag, raw, dataDir string) (database, error) {
	if raw == "" {
		return database{kind: "sqlite", path: filepath.Join(dataDir, "reeve.db")}, nil
	}
	if p, ok := strings.CutPrefix(raw, "sqlite://"); ok {
		if p == "" || p == "/" || strings.ContainsAny(p, "?#") {
			return database{}, usagef("%s %q names no SQLite file: use %s", flag, raw, databaseForms)
		}
		return database{kind: "sqlite", path: filepath.FromSlash(p)}, nil
	}
	if strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://") {
		return database{kind: "postgres", url: raw}, nil
	}
	what := "is not a database URL"
	if scheme, _, ok := strings.Cut(raw, "://"); ok && !strings.ContainsAny(scheme, "@/:") {
		what = fmt.Sprintf("has the scheme %q, which Reeve does not support", scheme)
	}
	// The URL itself is not repeated: it may hold a password.
	return database{}, usagef("%s %s: use %s", flag, what, databaseForms)
}

// redactURL hides the password of a URL.
func redactURL(raw string) string {
	at := strings.LastIndex(raw, "@")
	scheme := strings.Index(raw, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return raw
	}
	userinfo := raw[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return raw[:scheme+3] + user + ":xxxxx" + raw[at:]
	}
	return raw
}

// openStore opens the database.
func openStore(ctx context.Context, db database) (store.Store, error) {
	if db.kind == "sqlite" {
		if dir := filepath.Dir(db.path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("create the directory of the SQLite database: %w", err)
			}
		}
		// A new database file is readable by its owner only, like the key
		// file: it holds token hashes and sealed secrets. SQLite gives its
		// -wal and -shm files the same mode.
		if f, err := os.OpenFile(db.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			f.Close()
		}
		return sqlite.Open(ctx, db.path)
	}
	return postgres.Open(ctx, db.url)
}

// defaultDataDir is the user's data directory for Reeve: $XDG_DATA_HOME/reeve,
// else ~/.local/share/reeve, except on macOS and Windows, where it is under
// the user's configuration directory (~/Library/Application Support/reeve,
// %AppData%\reeve).
func (c *CLI) defaultDataDir() (string, error) {
	if x := c.getenv("XDG_DATA_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "reeve"), nil
	}
	switch runtime.GOOS {
	case "darwin", "windows", "ios", "plan9":
		dir, err := os.UserConfigDir()
		if err != nil {
			return "", usagef("no data directory: %v; give --data-dir (REEVE_DATA_DIR)", err)
		}
		return filepath.Join(dir, "reeve"), nil
	}
	home := c.getenv("HOME")
	if home == "" {
		return "", usagef("no data directory: neither $XDG_DATA_HOME nor $HOME is set; give --data-dir (REEVE_DATA_DIR)")
	}
	return filepath.Join(home, ".local", "share", "reeve"), nil
}

func defaultDataDirHelp() string {
	switch runtime.GOOS {
	case "darwin", "windows", "ios", "plan9":
		return "reeve in the user's configuration directory"
	}
	return "$XDG_DATA_HOME/reeve, else ~/.local/share/reeve"
}

// serverConfig is everything `reeve server` needs, read and checked before
// anything is opened or created.
type serverConfig struct {
	log         *slog.Logger
	listen      string
	dataDir     string
	db          database
	key         *secret.Key // from REEVE_SECRET_KEY; nil: keyFile
	keyFile     string
	adminSecret string
	shutdown    time.Duration
	schedRuns   int
	schedEvery  time.Duration
	maxResult   int
	runs        runFlags
}

// serverConfig checks f and the REEVE_* variables that have no flag.
func (c *CLI) serverConfig(f serverFlags) (*serverConfig, error) {
	log, err := newLogger(c.stderr, f.logFormat, f.logLevel)
	if err != nil {
		return nil, err
	}
	cfg := &serverConfig{log: log, listen: f.listen, shutdown: f.shutdownTimeout, schedRuns: f.scheduleRuns, schedEvery: f.scheduleEvery, maxResult: f.maxResultBytes, runs: f.runs}
	if err := f.runs.check(); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		return nil, usagef("--listen %q is not host:port (e.g. 127.0.0.1:4200, or :4200 for every interface)", f.listen)
	}
	switch {
	case f.shutdownTimeout < 0:
		return nil, usagef("--shutdown-timeout %v is negative", f.shutdownTimeout)
	case f.scheduleRuns < 1 || f.scheduleRuns > 1000:
		return nil, usagef("--schedule-runs %d is out of range: give 1 to 1000", f.scheduleRuns)
	case f.scheduleEvery < time.Second:
		return nil, usagef("--schedule-interval %v is too short: give 1s or more", f.scheduleEvery)
	case f.maxResultBytes < 1 || f.maxResultBytes > maxResultBytes:
		return nil, usagef("--max-result-bytes %d is out of range: give 1 to %d (larger results belong in a blob store)", f.maxResultBytes, maxResultBytes)
	}
	cfg.dataDir = f.dataDir
	if cfg.dataDir == "" {
		if cfg.dataDir, err = c.defaultDataDir(); err != nil {
			return nil, err
		}
	}
	if cfg.dataDir, err = filepath.Abs(cfg.dataDir); err != nil {
		return nil, usagef("--data-dir: %v", err)
	}
	if cfg.db, err = parseDatabaseURL("--database-url", f.databaseURL, cfg.dataDir); err != nil {
		return nil, err
	}
	if s := c.getenv("REEVE_SECRET_KEY"); s != "" {
		k, err := secret.ParseKey(s)
		if err != nil {
			return nil, usagef("REEVE_SECRET_KEY: %v", err)
		}
		cfg.key = &k
	} else {
		cfg.keyFile = f.secretKeyFile
		if cfg.keyFile == "" {
			cfg.keyFile = filepath.Join(cfg.dataDir, "secret.key")
		}
	}
	cfg.adminSecret = strings.TrimSpace(c.getenv("REEVE_ADMIN_TOKEN"))
	if s := cfg.adminSecret; s != "" && (!strings.HasPrefix(s, "reeve_") || len(s) < len("reeve_")+20) {
		return nil, usagef("REEVE_ADMIN_TOKEN must start with \"reeve_\" and have at least 20 more characters: make one with `reeve token generate`")
	}
	return cfg, nil
}

// runServer runs the server until ctx is cancelled, then shuts it down.
func (c *CLI) runServer(ctx context.Context, f serverFlags) (err error) {
	cfg, err := c.serverConfig(f)
	if err != nil {
		return err
	}
	log := cfg.log
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("create the data directory: %w", err)
	}

	var key secret.Key
	if cfg.key != nil {
		key = *cfg.key
	} else {
		k, created, err := secret.LoadOrCreateKeyFile(cfg.keyFile)
		if err != nil {
			return fmt.Errorf("secret key: %w", err)
		}
		if created {
			log.Warn("created a new secret key file: back it up: without it the server's secrets cannot be read", "path", cfg.keyFile)
		}
		key = k
	}

	st, err := openStore(ctx, cfg.db)
	if err != nil {
		if reeve.CodeOf(err) == reeve.CodeInvalid {
			return usageError{err} // a malformed URL
		}
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close the store: %w", cerr)
		}
	}()
	log.Info("store open", "database", cfg.db.String())

	sched, err := newScheduler(st, cfg.schedRuns, cfg.schedEvery, log)
	if err != nil {
		return err
	}
	maxRec := cfg.runs.maxRecoveries
	if maxRec == 0 {
		maxRec = -1
	}
	srv, err := server.New(server.Config{
		Store:             st,
		Sealer:            secret.NewBox(key),
		Logger:            log,
		Kick:              sched.Kick,
		NextRuns:          scheduler.Next,
		HeartbeatInterval: cfg.runs.heartbeat,
		MaxRecoveries:     maxRec,
		MaxResultBytes:    cfg.maxResult,
	})
	if err != nil {
		return err
	}
	mon, err := scheduler.NewMonitor(cfg.runs.monitorConfig(st, log, srv.RunsChanged))
	if err != nil {
		return err
	}
	// Listen before Bootstrap: a first admin token must not be minted (and
	// so lost) by a server that then fails to listen.
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	defer ln.Close() // after a failed Bootstrap; serveHTTP closes it too
	admin, created, err := srv.Bootstrap(ctx, cfg.adminSecret)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	if created {
		printAdminToken(c.stderr, admin, url)
	}

	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	var schedDone sync.WaitGroup
	schedDone.Go(func() { sched.Run(schedCtx) })
	schedDone.Go(func() { mon.Run(schedCtx) })
	defer func() {
		stopSched()
		schedDone.Wait()
		log.Info("scheduler and run monitor stopped")
	}()

	fmt.Fprintf(c.stdout, "reeve server listening on %s\n", url)
	log.Info("listening", "url", url, "data_dir", cfg.dataDir)
	if c.listening != nil {
		c.listening(ln.Addr().String())
	}
	return serveHTTP(ctx, ln, srv.Handler(), cfg.shutdown, log)
}

// printAdminToken shows the first admin token, once.
func printAdminToken(w io.Writer, token, url string) {
	line := strings.Repeat("=", 78)
	fmt.Fprintf(w, "%s\n", line)
	fmt.Fprintf(w, "  The server created the first admin token. It is shown now and never again:\n\n")
	fmt.Fprintf(w, "      %s\n\n", token)
	fmt.Fprintf(w, "  Keep it in a password manager. Log in with:\n")
	fmt.Fprintf(w, "      reeve login --server %s   (then paste the token)\n", url)
	fmt.Fprintf(w, "%s\n", line)
}

// serveHTTP serves h on ln until ctx is cancelled, then shuts down: it
// stops accepting connections, ends long-polling claims and log streams at
// once (their clients reconnect to another replica, or retry), lets other
// requests finish for up to timeout, and cuts off what is still running
// after it.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, timeout time.Duration, log *slog.Logger) error {
	stopping, stop := context.WithCancel(context.Background())
	defer stop()
	hs := &http.Server{
		Handler:           endOnShutdown(h, stopping),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(stop)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		_ = hs.Close()
		err = fmt.Errorf("shutdown: requests still running after --shutdown-timeout %v were cut off", timeout)
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("serve: %w", serr)
	}
	if err == nil {
		log.Info("server stopped")
	}
	return err
}

// endOnShutdown gives long-lived requests (claims, which long-poll, and
// log streams, which last as long as a run) a context that ends when
// stopping does, so that they answer at once when a shutdown starts. Other
// requests keep their context and finish.
func endOnShutdown(h http.Handler, stopping context.Context) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if longLived(r) {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			unhook := context.AfterFunc(stopping, cancel)
			defer unhook()
			r = r.WithContext(ctx)
		}
		h.ServeHTTP(w, r)
	})
}

// longLived reports whether r is a request that waits for events: an
// agent's claim, or a followed log stream.
func longLived(r *http.Request) bool {
	p, ok := strings.CutPrefix(r.URL.Path, api.Prefix)
	if !ok {
		return false
	}
	switch r.Method {
	case http.MethodPost:
		ok, _ := path.Match("/agents/*/claim", p)
		return ok
	case http.MethodGet:
		if ok, _ := path.Match("/flow_runs/*/logs", p); !ok {
			return false
		}
		follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
		return follow || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	}
	return false
}
