package secret_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/reevehq/reeve/internal/secret"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	raw := make([]byte, secret.KeySize)
	for i := range raw {
		raw[i] = byte(0xf0 + i) // bytes that make '+' and '/' in standard base64
	}
	var want secret.Key
	copy(want[:], raw)

	for _, tc := range []struct {
		name    string
		in      string
		wantErr string // "" for success
	}{
		{"base64 std", base64.StdEncoding.EncodeToString(raw), ""},
		{"base64 std unpadded", base64.RawStdEncoding.EncodeToString(raw), ""},
		{"base64 url", base64.URLEncoding.EncodeToString(raw), ""},
		{"base64 url unpadded", base64.RawURLEncoding.EncodeToString(raw), ""},
		{"hex", hex.EncodeToString(raw), ""},
		{"hex upper case", strings.ToUpper(hex.EncodeToString(raw)), ""},
		{"surrounding space", "  " + base64.StdEncoding.EncodeToString(raw) + "\n", ""},
		{"empty", "", "is empty"},
		{"blank", " \n\t", "is empty"},
		{"base64 too short", base64.StdEncoding.EncodeToString(raw[:16]), "base64 of 16 bytes, not 32"},
		{"base64 too long", base64.StdEncoding.EncodeToString(append(raw, 0)), "base64 of 33 bytes, not 32"},
		{"hex too short", hex.EncodeToString(raw[:31]), "has 62 hex digits, not 64"},
		{"63 hex digits", hex.EncodeToString(raw)[:63], "has 63 hex digits, not 64"},
		{"64 characters, not hex", strings.Repeat("zz", 32), "base64 of 48 bytes"},
		{"password", "my secret passphrase!", "neither base64 nor 64 hex digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := secret.ParseKey(tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseKey: %v", err)
				}
				if got != want {
					t.Errorf("ParseKey = %x, want %x", got[:], want[:])
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseKey = %x, want an error", got[:])
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantErr) {
				t.Errorf("ParseKey error %q does not say %q", msg, tc.wantErr)
			}
			if !strings.Contains(msg, "openssl rand -base64 32") {
				t.Errorf("ParseKey error %q does not say how to make a key", msg)
			}
			if in := strings.TrimSpace(tc.in); in != "" && strings.Contains(msg, in) {
				t.Errorf("ParseKey error %q quotes the given key", msg)
			}
		})
	}
}

func TestKeyBase64RoundTrip(t *testing.T) {
	t.Parallel()
	k := secret.NewKey()
	got, err := secret.ParseKey(k.Base64())
	if err != nil || got != k {
		t.Fatalf("ParseKey(k.Base64()) = %v, %v; want the key back", got == k, err)
	}
	if secret.NewKey() == k {
		t.Error("NewKey returned the same key twice")
	}
}

func TestKeyIsRedacted(t *testing.T) {
	t.Parallel()
	k := secret.NewKey()
	hexKey := hex.EncodeToString(k[:])
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("starting", "key", k)
	for _, s := range []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %x %X %d %q", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%+v", struct{ Key secret.Key }{k}),
		logged.String(),
	} {
		if strings.Contains(s, k.Base64()) || strings.Contains(strings.ToLower(s), hexKey) || strings.Contains(s, fmt.Sprint(k[0], " ", k[1], " ", k[2])) {
			t.Errorf("formatted key reveals it: %s", s)
		}
		if !strings.Contains(s, "secret.Key(redacted)") {
			t.Errorf("formatted key %q does not say it is redacted", s)
		}
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "conf", "reeve", "secret.key")

	k1, created, err := secret.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatalf("first LoadOrCreateKeyFile: %v", err)
	}
	if !created {
		t.Error("first LoadOrCreateKeyFile: created = false, want true")
	}
	if k1 == (secret.Key{}) {
		t.Error("first LoadOrCreateKeyFile: zero key")
	}
	if runtime.GOOS != "windows" {
		for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s: mode %04o, want %04o", p, got, want)
			}
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), k1.Base64()+"\n"; got != want {
		t.Errorf("key file holds %q, want the key's base64 and a line break", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the key file's directory holds %d entries, want the key file alone (a temporary file was left)", len(entries))
	}

	k2, created, err := secret.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatalf("second LoadOrCreateKeyFile: %v", err)
	}
	if created {
		t.Error("second LoadOrCreateKeyFile: created = true, want false")
	}
	if k2 != k1 {
		t.Error("second LoadOrCreateKeyFile returned another key")
	}
}

func TestLoadOrCreateKeyFileReadsOperatorKey(t *testing.T) {
	t.Parallel()
	want := secret.NewKey()
	path := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(path, []byte(hex.EncodeToString(want[:])+"\r\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	got, created, err := secret.LoadOrCreateKeyFile(path)
	if err != nil || created || got != want {
		t.Fatalf("LoadOrCreateKeyFile = same key %v, created %v, %v; want the file's key, false, nil", got == want, created, err)
	}
}

func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret.key")
	const n = 16
	var (
		wg      sync.WaitGroup
		keys    [n]secret.Key
		created [n]bool
		errs    [n]error
	)
	for i := range n {
		wg.Go(func() { keys[i], created[i], errs[i] = secret.LoadOrCreateKeyFile(path) })
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadOrCreateKeyFile #%d: %v", i, errs[i])
		}
		if created[i] {
			creators++
		}
		if keys[i] != keys[0] {
			t.Errorf("LoadOrCreateKeyFile #%d returned another key than #0", i)
		}
	}
	if creators != 1 {
		t.Errorf("%d callers created the key file, want 1", creators)
	}
}

func TestLoadOrCreateKeyFileRefuses(t *testing.T) {
	t.Parallel()
	key := secret.NewKey()
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		unix    bool   // only where files have Unix permissions
		want    string // in the error message
	}{
		{"world readable", key.Base64(), 0o644, true, "chmod 600"},
		{"group readable", key.Base64(), 0o640, true, "mode 0640"},
		{"group writable", key.Base64(), 0o620, true, "chmod 600"},
		{"empty", "", 0o600, false, "is empty"},
		{"not a key", "the-password-of-the-admin", 0o600, false, "neither base64 nor 64 hex digits"},
		{"short key", base64.StdEncoding.EncodeToString(key[:20]), 0o600, false, "not 32"},
		{"two keys", key.Base64() + "\n" + key.Base64(), 0o600, false, "neither base64"},
		{"huge", strings.Repeat("A", 10000), 0o600, false, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.unix && runtime.GOOS == "windows" {
				t.Skip("file modes are not Unix permissions on Windows")
			}
			path := filepath.Join(t.TempDir(), "secret.key")
			if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // whatever the umask
				t.Fatal(err)
			}
			_, created, err := secret.LoadOrCreateKeyFile(path)
			if err == nil {
				t.Fatal("LoadOrCreateKeyFile: no error")
			}
			if created {
				t.Error("LoadOrCreateKeyFile: created = true")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file and say %q", msg, tc.want)
			}
			if tc.content != "" && strings.Contains(msg, strings.TrimSpace(tc.content)[:8]) {
				t.Errorf("error %q quotes the file's content", msg)
			}
			if got, _ := os.ReadFile(path); string(got) != tc.content {
				t.Error("LoadOrCreateKeyFile changed the refused file")
			}
		})
	}
}

func TestLoadOrCreateKeyFileNotAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, err := secret.LoadOrCreateKeyFile(dir)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("LoadOrCreateKeyFile(a directory) = %v, want an error saying it is not a regular file", err)
	}
}
