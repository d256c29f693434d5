package reeve

import "testing"

// The execute command's environment: each missing variable is named, and
// nothing runs (exit 2). Runs against a server are tested in
// internal/execute, with a real server and a real flow program.
func TestExecuteEnvironment(t *testing.T) {
	full := map[string]string{
		"REEVE_API_URL":     "http://127.0.0.1:1",
		"REEVE_API_TOKEN":   "reeve_x",
		"REEVE_FLOW_RUN_ID": "run-1",
	}
	for missing := range full {
		t.Run(missing, func(t *testing.T) {
			for k, v := range full {
				if k == missing {
					v = ""
				}
				t.Setenv(k, v)
			}
			res := runCLI(t, nil, "execute")
			if res.code != exitUsage {
				t.Errorf("exit %d, want %d\n%s", res.code, exitUsage, res.stderr)
			}
			match(t, "stderr", res.stderr, "^error: "+missing+" is not set: ", "the agent that starts it sets", "use the run command")
		})
	}
	t.Run("REEVE_MAX_RETRY_WAIT", func(t *testing.T) {
		for k, v := range full {
			t.Setenv(k, v)
		}
		t.Setenv("REEVE_MAX_RETRY_WAIT", "soon")
		res := runCLI(t, nil, "execute")
		if res.code != exitUsage {
			t.Errorf("exit %d, want %d\n%s", res.code, exitUsage, res.stderr)
		}
		match(t, "stderr", res.stderr, `REEVE_MAX_RETRY_WAIT="soon": want a duration`)
	})
}

func TestRegisterUsage(t *testing.T) {
	t.Setenv("REEVE_API_URL", "")
	t.Setenv("REEVE_API_TOKEN", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"register", "--project", "p"}, `which server\? give --server URL \(or set REEVE_API_URL\)`},
		{[]string{"register", "--server", "http://127.0.0.1:1"}, `which project\? give --project NAME`},
		{[]string{"register", "--server", "http://127.0.0.1:1", "--project", "p", "--flow", "nope"}, `no flow named "nope" in this program`},
		{[]string{"register", "--server", "ftp://x", "--project", "p"}, `does not start with http:// or https://`},
	} {
		res := runCLI(t, nil, tc.args...)
		if res.code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, res.code, exitUsage, res.stderr)
		}
		match(t, "stderr", res.stderr, tc.want)
	}
}
