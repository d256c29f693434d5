package secret

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeySize is the size of a Key in bytes.
const KeySize = 32

// Key is a 256-bit key for a Box. It formats (with fmt, in any verb) and
// logs (with log/slog) as "secret.Key(redacted)"; Base64 returns its text.
type Key [KeySize]byte

// howToMake tells an operator how to make a key; error messages end with it.
const howToMake = "give 32 random bytes as base64 (make one with `openssl rand -base64 32`) or as 64 hex digits (`openssl rand -hex 32`)"

// NewKey returns a random key.
func NewKey() Key {
	var k Key
	rand.Read(k[:]) // never fails: it crashes the program instead
	return k
}

// ParseKey reads a key given as text: the standard or URL-safe base64 of 32
// bytes (padded or not), or 64 hex digits. Spaces and line breaks around it
// are ignored. Its errors say which forms it takes and never quote s.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Key{}, fmt.Errorf("the secret key is empty: %s", howToMake)
	}
	var k Key
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			copy(k[:], b)
			return k, nil
		}
	}
	wrongSize := -1 // bytes of the first base64 decoding, if any
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) == KeySize {
			copy(k[:], b)
			return k, nil
		}
		if wrongSize < 0 {
			wrongSize = len(b)
		}
	}
	switch {
	case isHex(s):
		return Key{}, fmt.Errorf("the secret key has %d hex digits, not %d: %s", len(s), 2*KeySize, howToMake)
	case wrongSize >= 0:
		return Key{}, fmt.Errorf("the secret key is base64 of %d bytes, not %d: %s", wrongSize, KeySize, howToMake)
	}
	return Key{}, fmt.Errorf("the secret key is neither base64 nor 64 hex digits: %s", howToMake)
}

// isHex reports whether s is hex digits only.
func isHex(s string) bool {
	return strings.Trim(s, "0123456789abcdefABCDEF") == ""
}

// Base64 returns the key as standard base64, the form ParseKey reads and
// key files hold.
func (k Key) Base64() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Format writes "secret.Key(redacted)" whatever the verb, so that printing a
// key, or a struct that holds one, does not reveal it.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, "secret.Key(redacted)") }

// LogValue logs a key as "secret.Key(redacted)".
func (k Key) LogValue() slog.Value { return slog.StringValue("secret.Key(redacted)") }

// maxKeyFile bounds what LoadOrCreateKeyFile reads: a key is 45 bytes.
const maxKeyFile = 4096

// LoadOrCreateKeyFile returns the key in the file at path, or, when there is
// no such file, creates it with a new random key and returns that key with
// created true.
//
// A new key file has mode 0600 and holds the key as base64 and a line
// break; its directory is created with mode 0700 if needed. The file
// appears whole or not at all (it is written aside, synced, then linked into
// place), and only one of several servers that start together on a shared
// directory creates it: the others read the key it wrote.
//
// It refuses a key file that group or others may read or write (on systems
// with Unix permissions), and one that does not hold a key as ParseKey reads
// it; the errors say what to do and never quote the file's content.
func LoadOrCreateKeyFile(path string) (key Key, created bool, err error) {
	key, err = readKeyFile(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, false, err
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Key{}, false, fmt.Errorf("create the secret key file %s: %w", path, err)
	}
	key = NewKey()
	won, err := createExclusive(path, []byte(key.Base64()+"\n"))
	if err != nil {
		return Key{}, false, fmt.Errorf("create the secret key file %s: %w", path, err)
	}
	if !won { // another server created it first
		key, err = readKeyFile(path)
		return key, false, err
	}
	return key, true, nil
}

// readKeyFile reads and checks the key file at path. A missing file is an
// error matching os.ErrNotExist.
func readKeyFile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Key{}, err
		}
		return Key{}, fmt.Errorf("read the secret key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Key{}, fmt.Errorf("read the secret key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Key{}, fmt.Errorf("the secret key file %s is not a regular file: give the path of a key file, or of one to create", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return Key{}, fmt.Errorf("the secret key file %s has mode %04o: others than its owner may read it, and it decrypts every secret: run `chmod 600 %s`", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return Key{}, fmt.Errorf("read the secret key file %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return Key{}, fmt.Errorf("the secret key file %s is larger than %d bytes, so it holds no key: %s", path, maxKeyFile, howToMake)
	}
	key, err := ParseKey(string(data))
	if err != nil {
		return Key{}, fmt.Errorf("the secret key file %s: %w", path, err)
	}
	return key, nil
}

// createExclusive creates the file at path, with mode 0600, holding data,
// unless a file is there already: then it returns false. The file appears
// with all its content: it is written and synced under a temporary name,
// then hard-linked to path, which fails if path exists. Where the file
// system has no hard links, it falls back to creating path with O_EXCL,
// which a concurrent reader may see empty for a moment.
func createExclusive(path string, data []byte) (bool, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if err := writeSync(tmp, data); err != nil {
		return false, err
	}
	err = os.Link(tmp.Name(), path)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrExist):
		return false, nil
	default: // no hard links here
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if err := writeSync(f, data); err != nil {
			os.Remove(path)
			return false, err
		}
	}
	return true, syncDir(dir)
}

// writeSync writes data to f with mode 0600, syncs and closes it.
func writeSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a new directory entry durable where the system allows.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
