package secret_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/reevehq/reeve/internal/secret"
)

func TestBoxRoundTrip(t *testing.T) {
	t.Parallel()
	box := secret.NewBox(secret.NewKey())
	for _, tc := range []struct {
		name  string
		value []byte
		ad    []byte
	}{
		{"empty value", nil, []byte("p1/EMPTY")},
		{"short value", []byte("hunter2"), []byte("p1/DB_PASSWORD")},
		{"no additional data", []byte("hunter2"), nil},
		{"binary value", []byte{0, 1, 2, 255, 254, 0}, []byte("p1/BLOB")},
		{"long value", bytes.Repeat([]byte("x"), 1<<16), []byte("p1/CERT")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sealed := box.Seal(tc.value, tc.ad)
			if got, want := len(sealed), len(tc.value)+secret.Overhead; got != want {
				t.Errorf("len(Seal) = %d, want %d", got, want)
			}
			got, err := box.Open(sealed, tc.ad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tc.value) {
				t.Errorf("Open = %q, want %q", got, tc.value)
			}
		})
	}
}

func TestBoxSealIsRandomized(t *testing.T) {
	t.Parallel()
	box := secret.NewBox(secret.NewKey())
	value := []byte("correct horse battery staple")
	a, b := box.Seal(value, []byte("p/n")), box.Seal(value, []byte("p/n"))
	if bytes.Equal(a, b) {
		t.Error("sealing a value twice gave the same bytes: the nonce is not random")
	}
	for _, sealed := range [][]byte{a, b} {
		if bytes.Contains(sealed, value) || bytes.Contains(sealed, value[:8]) {
			t.Errorf("the sealed value contains the clear text: %x", sealed)
		}
	}
}

func TestBoxOpenFails(t *testing.T) {
	t.Parallel()
	const value = "s3cr3t-VALUE-do-not-leak"
	key := secret.NewKey()
	box := secret.NewBox(key)
	ad := []byte("project-1/API_TOKEN")
	sealed := box.Seal([]byte(value), ad)

	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	for _, tc := range []struct {
		name   string
		box    *secret.Box
		sealed []byte
		ad     []byte
		want   string // in the error message
	}{
		{"wrong key", secret.NewBox(secret.NewKey()), sealed, ad, "does not authenticate"},
		{"other secret's additional data", box, sealed, []byte("project-1/OTHER"), "does not authenticate"},
		{"other project's additional data", box, sealed, []byte("project-2/API_TOKEN"), "does not authenticate"},
		{"no additional data", box, sealed, nil, "does not authenticate"},
		{"tampered nonce", box, flip(1), ad, "does not authenticate"},
		{"tampered ciphertext", box, flip(1 + 12 + 3), ad, "does not authenticate"},
		{"tampered tag", box, flip(len(sealed) - 1), ad, "does not authenticate"},
		{"truncated", box, sealed[:len(sealed)-1], ad, "does not authenticate"},
		{"too short", box, sealed[:secret.Overhead-1], ad, "shorter than"},
		{"empty", box, nil, ad, "empty"},
		{"other version", box, append([]byte{2}, sealed[1:]...), ad, "format version 2"},
		{"clear text", box, []byte(value), ad, "format version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.box.Open(tc.sealed, tc.ad)
			if err == nil {
				t.Fatalf("Open = %q, want an error", got)
			}
			if !errors.Is(err, secret.ErrDecrypt) {
				t.Errorf("Open error %q does not match ErrDecrypt", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) {
				t.Errorf("Open error %q does not say %q", msg, tc.want)
			}
			if msg := err.Error(); strings.Contains(msg, value) || strings.Contains(msg, key.Base64()) {
				t.Errorf("Open error %q reveals the value or the key", msg)
			}
		})
	}
}

func FuzzOpen(f *testing.F) {
	key := secret.Key{1, 2, 3}
	box := secret.NewBox(key)
	f.Add(box.Seal([]byte("value"), []byte("p/n")), []byte("p/n"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1}, []byte("p/n"))
	f.Add(bytes.Repeat([]byte{1}, secret.Overhead), []byte(nil))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		value, err := box.Open(sealed, ad)
		if err != nil {
			if !errors.Is(err, secret.ErrDecrypt) {
				t.Fatalf("Open error %q does not match ErrDecrypt", err)
			}
			return
		}
		// Only a value this box sealed opens: sealing is randomized, so
		// check the round trip instead.
		if got, err := box.Open(box.Seal(value, ad), ad); err != nil || !bytes.Equal(got, value) {
			t.Fatalf("round trip of an opened value: %q, %v", got, err)
		}
	})
}
