package testenv

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvPostgresURL names a PostgreSQL server for the tests to use instead of
// a throwaway cluster: a postgres:// URL whose user may create databases.
// Its database (usually /postgres) is used only to create and drop the
// tests' databases.
const EnvPostgresURL = "REEVE_TEST_POSTGRES_URL"

// installHint says how to get PostgreSQL's server binaries.
const installHint = "install Debian's postgresql package (apt-get install -y postgresql), " +
	"or set " + EnvPostgresURL + " to a server where the URL's user may create databases"

// debianBinDirs matches the directories of Debian's PostgreSQL binaries.
const debianBinDirs = "/usr/lib/postgresql/*/bin"

// tempPrefix names the temporary directories of throwaway clusters.
const tempPrefix = "reeve-testenv-pg-"

// Postgres returns the URL of a new, empty database for this test alone,
// dropped when the test ends (with its remaining connections).
//
// The database lives on the server named by REEVE_TEST_POSTGRES_URL, or
// else on a throwaway cluster that the first call starts (about 2 s) from
// the PostgreSQL binaries in /usr/lib/postgresql/*/bin or on PATH: one
// cluster per test process, listening on 127.0.0.1 on a free port, without
// fsync, run as the postgres user when the tests run as root (initdb refuses
// root). [Main] stops it after the tests; on Linux it also stops if the test
// process dies. Each further database costs tens of milliseconds.
//
// Without PostgreSQL's binaries the test is skipped with a message saying
// what to install, or fails when REEVE_TEST_REQUIRE names postgres.
func Postgres(t testing.TB) string {
	t.Helper()
	srv, first, skip, err := postgresServer()
	if err != nil {
		t.Fatal(err)
	}
	if skip != "" {
		Skip(t, ServicePostgres, skip)
	}
	if first != "" {
		t.Log(first)
	}

	name := fmt.Sprintf("reeve_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := srv.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create test database %s on %s: %v", name, srv.base.Redacted(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// FORCE closes the connections a test left open, so one leaky
		// test cannot make every later cleanup fail.
		if _, err := srv.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop test database %s: %v", name, err)
		}
	})
	u := *srv.base
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// pgServer is the server that test databases are created on.
type pgServer struct {
	base    *url.URL      // URL of the admin database; tests get its path replaced
	admin   *pgxpool.Pool // connections to the admin database
	cluster *cluster      // the throwaway cluster, or nil for REEVE_TEST_POSTGRES_URL
}

var (
	pgMu    sync.Mutex
	pgTried bool
	pgSrv   *pgServer
	pgSkip  string // why PostgreSQL is unavailable
	pgErr   error  // a failure that no test can skip past
	dbSeq   atomic.Int64
)

// postgresServer starts or connects to the server on its first call and
// returns the same outcome on every later one. first is a message for the
// test that started a cluster.
func postgresServer() (srv *pgServer, first, skip string, err error) {
	pgMu.Lock()
	defer pgMu.Unlock()
	if pgTried {
		return pgSrv, "", pgSkip, pgErr
	}
	pgTried = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if raw := os.Getenv(EnvPostgresURL); raw != "" {
		pgSrv, pgErr = connectExternal(ctx, raw)
		return pgSrv, "", "", pgErr
	}
	start := time.Now()
	c, err := startCluster(ctx)
	if err != nil {
		// Missing binaries, or a cluster that did not start: either way
		// the tests skip, or fail where PostgreSQL is required.
		pgSkip = err.Error()
		return nil, "", pgSkip, nil
	}
	admin, err := newAdminPool(ctx, c.url)
	if err != nil {
		_ = c.stop()
		pgSkip = fmt.Sprintf("throwaway PostgreSQL cluster started but refused connections: %v", err)
		return nil, "", pgSkip, nil
	}
	pgSrv = &pgServer{base: c.url, admin: admin, cluster: c}
	first = fmt.Sprintf("testenv: started PostgreSQL %s in %v at %s (data in %s)",
		c.version, time.Since(start).Round(time.Millisecond), c.url.Redacted(), c.dir)
	return pgSrv, first, "", nil
}

func connectExternal(ctx context.Context, raw string) (*pgServer, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, fmt.Errorf("testenv: %s must be a postgres://user@host:port/db URL, got %q", EnvPostgresURL, redact(raw))
	}
	admin, err := newAdminPool(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("testenv: %s=%s: %w", EnvPostgresURL, u.Redacted(), err)
	}
	return &pgServer{base: u, admin: admin}, nil
}

func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

func newAdminPool(ctx context.Context, u *url.URL) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// stopPostgres closes the admin connections and stops the throwaway
// cluster, removing its directory.
func stopPostgres() error {
	pgMu.Lock()
	defer pgMu.Unlock()
	if pgSrv == nil {
		return nil
	}
	pgSrv.admin.Close()
	var err error
	if pgSrv.cluster != nil {
		err = pgSrv.cluster.stop()
	}
	pgSrv = nil
	return err
}

// cluster is a throwaway PostgreSQL cluster: a postmaster child process
// and its temporary directory.
type cluster struct {
	dir     string
	url     *url.URL
	version string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the postmaster has exited
	waitErr error         // set before done is closed
}

// startCluster creates and starts a cluster.
func startCluster(ctx context.Context) (*cluster, error) {
	bin, err := findBinDir(debianBinDirs)
	if err != nil {
		return nil, err
	}
	attr, err := runAs()
	if err != nil {
		return nil, err
	}
	removeStaleDirs()

	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return nil, fmt.Errorf("testenv: PostgreSQL cluster directory: %w", err)
	}
	c := &cluster{dir: dir, version: filepath.Base(filepath.Dir(bin))}
	fail := func(err error) (*cluster, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fail(err)
	}
	if attr.uid >= 0 {
		if err := os.Chown(dir, attr.uid, attr.gid); err != nil {
			return fail(fmt.Errorf("testenv: hand %s to the postgres user: %w", dir, err))
		}
	}

	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.Dir = dir
	initdb.Env = childEnv()
	initdb.SysProcAttr = attr.sys()
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("testenv: initdb failed: %v\n%s", err, out))
	}

	// A port picked by listening on :0 may be taken again before the
	// postmaster binds it; try a few.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		err = c.start(ctx, bin, data, port, attr)
		if err == nil {
			return c, nil
		}
		if attempt == 3 || !strings.Contains(err.Error(), "already in use") {
			return fail(err)
		}
	}
}

// start runs the postmaster on port and waits until it accepts connections.
func (c *cluster) start(ctx context.Context, bin, data string, port int, attr runAsUser) error {
	logPath := filepath.Join(c.dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	if attr.uid >= 0 {
		_ = os.Chown(logPath, attr.uid, attr.gid)
	}
	// The Unix socket lives in the temporary directory, unless its path
	// would pass the ~100 bytes a socket path may have: then there is none
	// (the tests connect over TCP).
	sockets := c.dir
	if len(sockets) > 80 {
		sockets = ""
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", data,
		"-p", strconv.Itoa(port),
		"-k", sockets,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
	)
	cmd.Dir = c.dir
	cmd.Env = childEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = attr.sys()

	// On Linux the postmaster gets a parent-death signal, sent when the OS
	// thread that started it exits. Start it from a goroutine that holds
	// its thread until the postmaster is gone, so only the end of the test
	// process can send that signal.
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("testenv: start postgres: %w", err)
	}
	c.cmd, c.done = cmd, done
	c.url = &url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}

	deadline := time.Now().Add(time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, c.url.String())
		cancel()
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("testenv: postgres exited at start (%v); its log %s says:\n%s", c.waitErr, logPath, tail(logPath))
		case <-ctx.Done():
			_ = c.stop()
			return fmt.Errorf("testenv: postgres did not accept connections: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = c.stop()
			return fmt.Errorf("testenv: postgres did not accept connections within a minute (last error: %v); its log %s says:\n%s", err, logPath, tail(logPath))
		}
	}
}

// stop shuts the postmaster down (fast shutdown: open sessions are ended),
// and removes the cluster's directory.
func (c *cluster) stop() error {
	var err error
	if c.cmd != nil {
		_ = c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
			err = fmt.Errorf("testenv: postgres (pid %d) ignored a fast shutdown for 30 s and was killed", c.cmd.Process.Pid)
		}
	}
	if rmErr := os.RemoveAll(c.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("testenv: remove PostgreSQL cluster directory: %w", rmErr)
	}
	return err
}

// findBinDir returns the directory holding initdb and postgres: the newest
// of the directories glob matches (/usr/lib/postgresql/N/bin on Debian and
// Ubuntu), else the one of initdb on PATH.
func findBinDir(glob string) (string, error) {
	dirs, _ := filepath.Glob(glob)
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(a)), 64)
		vb, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(b)), 64)
		return cmp.Compare(vb, va)
	})
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL's server binaries (initdb, postgres) are not in /usr/lib/postgresql/*/bin or on PATH: " + installHint)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// runAsUser is who the cluster's processes run as: uid -1 for the current
// user, else the postgres user (when the tests run as root).
type runAsUser struct{ uid, gid int }

func runAs() (runAsUser, error) {
	if os.Geteuid() != 0 {
		return runAsUser{uid: -1, gid: -1}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return runAsUser{}, errors.New("the tests run as root, which initdb refuses, and there is no postgres user to run it as: " + installHint)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return runAsUser{}, fmt.Errorf("the postgres user has a non-numeric uid %q or gid %q", u.Uid, u.Gid)
	}
	return runAsUser{uid: uid, gid: gid}, nil
}

// childEnv is the environment of initdb and postgres: ours, without the
// PG* variables that could point them elsewhere, and with C messages.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testenv: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// removeStaleDirs removes the directories of clusters whose test process
// is gone and whose postmaster is not running: those of test processes that
// were killed before Main could stop their cluster.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, d := range dirs {
		owner, err := readPID(filepath.Join(d, "owner.pid"))
		if err != nil || processAlive(owner) {
			continue // being set up right now, or still in use
		}
		if pm, err := readPID(filepath.Join(d, "data", "postmaster.pid")); err == nil && processAlive(pm) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// readPID reads the process ID on the first line of a pid file.
func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return strconv.Atoi(strings.TrimSpace(string(line)))
}

// tail returns the last lines of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
