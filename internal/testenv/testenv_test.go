package testenv

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestParseRequire(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: nil},
		{in: "postgres", want: []string{"postgres"}},
		{in: " postgres , docker,,chrome ", want: []string{"postgres", "docker", "chrome"}},
		{in: "postgress", wantErr: `unknown service "postgress"`},
	} {
		got, err := parseRequire(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseRequire(%q) error = %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseRequire(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// fakeTB records how a helper ended a test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

// Like testing.T's, Fatal and Skipf end the goroutine.
func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatal(args ...any) {
	f.failed = fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestSkip(t *testing.T) {
	for _, tc := range []struct {
		require            string
		wantSkip, wantFail bool
	}{
		{require: "", wantSkip: true},
		{require: "docker", wantSkip: true},
		{require: "docker,postgres", wantFail: true},
		{require: "postgress", wantFail: true}, // a typo must not make postgres optional
	} {
		t.Setenv(EnvRequire, tc.require)
		f := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Skip(f, ServicePostgres, "no binaries: install postgresql")
		}()
		<-done
		if (f.skipped != "") != tc.wantSkip || (f.failed != "") != tc.wantFail {
			t.Errorf("%s=%q: skipped %q, failed %q; want skip %v, fail %v",
				EnvRequire, tc.require, f.skipped, f.failed, tc.wantSkip, tc.wantFail)
		}
		if msg := f.skipped + f.failed; tc.require != "postgress" && !strings.Contains(msg, "install postgresql") {
			t.Errorf("%s=%q: message %q does not give the reason", EnvRequire, tc.require, msg)
		}
	}
}

// TestFindBinDirMissing checks the message when PostgreSQL is not installed.
func TestFindBinDirMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findBinDir(filepath.Join(t.TempDir(), "*", "bin"))
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y postgresql") || !strings.Contains(err.Error(), EnvPostgresURL) {
		t.Errorf("findBinDir without PostgreSQL = %v, want an error naming the Debian package and %s", err, EnvPostgresURL)
	}
}

// TestPostgres checks that each call gets its own empty database, and that
// the database is dropped when its test ends.
func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var first string
	outer := t
	t.Run("use", func(t *testing.T) {
		first = Postgres(t)
		// The connection stays open until the outer test ends: the drop at
		// the end of this one must close it.
		conn, err := pgx.Connect(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		outer.Cleanup(func() { _ = conn.Close(context.Background()) })
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("new database has %d tables, want none", n)
		}
		if _, err := conn.Exec(ctx, `CREATE TABLE t (x int)`); err != nil {
			t.Fatal(err)
		}
	})

	second := Postgres(t)
	if second == first {
		t.Fatalf("two calls returned the same database %s", first)
	}
	conn := connect(t, second)
	var exists bool
	name := first[strings.LastIndex(first, "/")+1 : strings.Index(first, "?")]
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s of a finished test still exists", name)
	}
}

// TestPostgresParallel creates databases from parallel tests and reports
// what one costs.
func TestPostgresParallel(t *testing.T) {
	t.Parallel()
	Postgres(t) // start the cluster outside the timing
	const n = 8
	var mu sync.Mutex
	var total time.Duration
	t.Run("group", func(t *testing.T) {
		for i := range n {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				u := Postgres(t)
				d := time.Since(start)
				mu.Lock()
				total += d
				mu.Unlock()
				var one int
				if err := connect(t, u).QueryRow(t.Context(), `SELECT 1`).Scan(&one); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
	t.Logf("a test database took %v on average", (total / n).Round(time.Millisecond))
}

// TestPostgresDiesWithTestProcess kills a test process that started a
// cluster and checks that the postmaster goes too, and that the next
// cluster start removes the directory left behind.
func TestPostgresDiesWithTestProcess(t *testing.T) {
	if os.Getenv("REEVE_TESTENV_HELPER") == "1" {
		helperProcess(t)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux only")
	}
	if os.Getenv(EnvPostgresURL) != "" {
		t.Skipf("%s is set: no cluster is started", EnvPostgresURL)
	}
	Postgres(t) // skips or fails as any PostgreSQL test would
	t.Parallel()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPostgresDiesWithTestProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "REEVE_TESTENV_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "postmaster %d %s", &pid, &dir); err == nil {
			break
		}
	}
	if pid == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("the helper test process did not report its postmaster")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	deadline := time.Now().Add(30 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postmaster %d still runs 30 s after its test process was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	removeStaleDirs()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the directory %s of the killed test process's cluster was not removed (%v)", dir, err)
	}
}

// helperProcess starts a cluster, reports its postmaster and waits to be
// killed.
func helperProcess(t *testing.T) {
	Postgres(t)
	pgMu.Lock()
	c := pgSrv.cluster
	pgMu.Unlock()
	fmt.Printf("postmaster %d %s\n", c.cmd.Process.Pid, c.dir)
	time.Sleep(time.Hour)
}

// running reports whether a process exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}
