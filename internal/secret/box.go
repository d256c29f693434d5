// Package secret keeps secret values safe at rest on the Reeve server.
//
// The server stores every secret value sealed by a [Box]: encrypted and
// authenticated with AES-256-GCM under one server [Key]. The store never
// sees a clear-text value, and a database dump without the key reveals
// nothing but the secrets' names and the lengths of their values.
//
// A sealed value is
//
//	version (1 byte, 1) ‖ nonce (12 random bytes) ‖ ciphertext ‖ tag (16 bytes)
//
// Seal binds it to additional data that the server sets to
// "projectID/name", so a sealed value copied onto another secret, or into
// another project, does not open. The version byte is authenticated too,
// and leaves room for a later format (another cipher, a key ID for key
// rotation).
//
// The key comes from the operator, as base64 or hex text ([ParseKey]), or
// from a key file that the server creates on first start
// ([LoadOrCreateKeyFile]). Losing the key loses every secret: back it up
// with the database.
//
// Nothing in this package puts a secret value or a key into an error
// message, and a [Key] formats as "secret.Key(redacted)".
//
// Errors are plain errors, not reeve error codes: the SDK may come to use
// this package for its secret providers, and the SDK's root package cannot
// be imported from here. To the server, whose error table maps every error
// without a code to "internal", a value that does not open is an internal
// error, which is what it is.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
)

// ErrDecrypt is matched, with errors.Is, by every error Open returns: the
// value is malformed, or the key or the additional data is not the one it
// was sealed with, or it was altered.
var ErrDecrypt = errors.New("secret: cannot decrypt")

// version1 is the first byte of a value sealed with AES-256-GCM and a
// random 96-bit nonce.
const version1 byte = 1

// Overhead is how many bytes sealing adds to a value: the version byte,
// the nonce and the authentication tag.
const Overhead = 1 + 12 + 16

// Box seals and opens secret values with one key. It is safe for
// concurrent use. A key must not seal more than 2^32 values (random nonces
// would then risk colliding), far more than any Reeve server holds.
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a Box that seals and opens values with key.
func NewBox(key Key) *Box {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("secret: AES with a 32-byte key: " + err.Error()) // cannot happen: the key size is fixed
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		panic("secret: GCM over AES: " + err.Error()) // cannot happen: AES has 16-byte blocks
	}
	return &Box{aead: aead}
}

// Seal encrypts and authenticates value, bound to additional data ad
// (which is not secret and not stored: Open needs the same), and returns
// the sealed value, len(value)+Overhead bytes long.
func (b *Box) Seal(value, ad []byte) []byte {
	out := make([]byte, 1, len(value)+Overhead)
	out[0] = version1
	return b.aead.Seal(out, nil, value, additional(version1, ad))
}

// Open checks and decrypts a value sealed with the same key and additional
// data. Every error it returns matches ErrDecrypt and says why without
// quoting the value.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, fmt.Errorf("%w: the sealed value is empty", ErrDecrypt)
	}
	if v := sealed[0]; v != version1 {
		return nil, fmt.Errorf("%w: the sealed value has format version %d, and this Reeve reads version %d: it was written by another Reeve, or is not a sealed value", ErrDecrypt, v, version1)
	}
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: the sealed value is %d bytes long, shorter than the %d bytes sealing adds: it was truncated", ErrDecrypt, len(sealed), Overhead)
	}
	value, err := b.aead.Open(nil, nil, sealed[1:], additional(sealed[0], ad))
	if err != nil {
		return nil, fmt.Errorf("%w: the value does not authenticate: the server's secret key is not the one it was sealed with, or it was sealed for another secret, or it was altered", ErrDecrypt)
	}
	return value, nil
}

// additional returns the additional data of the AEAD: the format version,
// then the caller's data.
func additional(version byte, ad []byte) []byte {
	out := make([]byte, 0, 1+len(ad))
	return append(append(out, version), ad...)
}
