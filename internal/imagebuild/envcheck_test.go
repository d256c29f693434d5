package imagebuild

import (
	"strings"
	"testing"
)

func TestCheckEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kv  string
		bad string // "" when allowed; else a part of the reason
	}{
		{"LOG_LEVEL=debug", ""},
		{"TZ=Europe/Paris", ""},
		{"KEYBOARD=us", ""},
		{"WORKERS=16", ""},
		{"API_URL=https://api.example.com/v1/things/abcdef0123456789", ""},
		{"DATA_DIR=/var/lib/myflows/cache-3f9a7c1e2b", ""},
		{"GREETING=hello there, how are you today", ""},
		{"VERSION=v1.2.3-rc.1+build.20261126", ""},
		{"API_TOKEN=x", "its name says TOKEN"},
		{"db_password=hunter2", "its name says PASSWORD"},
		{"AWS_SECRET_ACCESS_KEY=abc", "its name says SECRET"},
		{"GOOGLE_APPLICATION_CREDENTIALS=/creds.json", "its name says CREDENTIALS"},
		{"STRIPE_KEY=live", "its name says KEY"},
		{"GH=ghp_0123456789abcdefABCDEF", "starts like a credential (ghp_…)"},
		{"CLOUD=AKIAIOSFODNN7EXAMPLE", "starts like a credential (AKIA…)"},
		{"DATABASE_URL=postgres://app:s3cr3t@db:5432/app", "a URL with a password"},
		{"SIGNING=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "random-looking string of 64 characters"},
		{"BLOB=dGhpcyBpcyBhIHNlY3JldCB2YWx1ZSB0aGF0IGlzIGxvbmc=", "random-looking"},
	} {
		err := CheckEnv([]string{tc.kv}, nil)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%s refused: %v", tc.kv, err)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%s: %v, want a refusal saying %q", tc.kv, err, tc.bad)
		}
	}
}

func TestCheckEnvNamesEveryOneAndSaysWhatToDo(t *testing.T) {
	t.Parallel()
	err := CheckEnv([]string{"API_TOKEN=x", "LOG_LEVEL=info", "DB_PASSWORD=y"}, nil)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"API_TOKEN (its name says TOKEN)", "DB_PASSWORD (its name says PASSWORD)",
		"everyone who can pull the image can read it", "reeve secret set NAME", "--allow-env NAME"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Errorf("error names a harmless variable: %v", err)
	}
	if err := CheckEnv([]string{"API_TOKEN=public-demo", "DB_PASSWORD=y"}, []string{"API_TOKEN", "DB_PASSWORD"}); err != nil {
		t.Errorf("allowed variables refused: %v", err)
	}
	if err := CheckEnv([]string{"API_TOKEN=x", "DB_PASSWORD=y"}, []string{"API_TOKEN"}); err == nil || strings.Contains(err.Error(), "API_TOKEN") {
		t.Errorf("--allow-env of one variable: %v, want only DB_PASSWORD refused", err)
	}
}
