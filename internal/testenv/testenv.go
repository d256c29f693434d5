// Package testenv holds test helpers that start REAL things: a PostgreSQL
// cluster, an OCI registry on loopback, a Docker engine client that really
// pinged the daemon, a busybox base image made without any registry, and
// later a headless Chromium.
//
// A test that needs something the machine lacks skips with a message saying
// what to install. In CI, REEVE_TEST_REQUIRE (a comma-separated list of
// services: postgres, docker, chrome) turns that skip into a failure, so a
// missing service can never pass as a green run:
//
//	REEVE_TEST_REQUIRE=postgres go test ./internal/store/...
//
// Packages that start services call [Main] from their TestMain, which stops
// what the tests started once they have all run:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
package testenv

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// The services REEVE_TEST_REQUIRE may name.
const (
	ServicePostgres = "postgres"
	ServiceDocker   = "docker"
	ServiceChrome   = "chrome"
)

var services = []string{ServicePostgres, ServiceDocker, ServiceChrome}

// EnvRequire is the variable listing the services whose absence fails a test.
const EnvRequire = "REEVE_TEST_REQUIRE"

// parseRequire splits a REEVE_TEST_REQUIRE value into service names,
// rejecting names it does not know so that a typo cannot silently turn a
// required service back into an optional one.
func parseRequire(v string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(services, f) {
			return nil, fmt.Errorf("%s=%q names an unknown service %q: want a comma-separated list of %s",
				EnvRequire, v, f, strings.Join(services, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// Required reports whether REEVE_TEST_REQUIRE names service, so that its
// absence must fail the test instead of skipping it. It fails the test when
// the variable names a service this package does not know.
func Required(t testing.TB, service string) bool {
	t.Helper()
	req, err := parseRequire(os.Getenv(EnvRequire))
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(req, service)
}

// Skip skips the test because service is unavailable for reason, which
// should say what to install or set. When REEVE_TEST_REQUIRE names service
// it fails the test instead.
func Skip(t testing.TB, service, reason string) {
	t.Helper()
	if Required(t, service) {
		t.Fatalf("%s is unavailable and %s=%s requires it: %s", service, EnvRequire, os.Getenv(EnvRequire), reason)
	}
	t.Skipf("skipping: %s is unavailable: %s (set %s=%s to make this a failure)", service, reason, EnvRequire, service)
}

// Main runs the package's tests, then stops the services they started
// (the PostgreSQL cluster of [Postgres]) and fails the run if a goroutine
// started by the tests is still running. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Without it, a started cluster still stops when the test process exits
// (even when it is killed), but its temporary directory is only removed by
// the next test process that starts one.
func Main(m *testing.M) {
	if _, err := parseRequire(os.Getenv(EnvRequire)); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(2)
	}
	ignore := goleak.IgnoreCurrent()
	code := m.Run()
	if err := stopPostgres(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		if code == 0 {
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(ignore); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: goroutines left running after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}
