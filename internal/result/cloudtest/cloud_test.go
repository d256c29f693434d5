// Package cloudtest checks that a program which links a gocloud cloud driver
// can open result stores on it. It lives apart from package result so that
// the cloud SDKs are linked into this test binary only; the result package
// itself must not depend on them (see result.TestNoCloudSDKs).
package cloudtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/reevehq/reeve/internal/result"
)

// offlineCloudEnv points the AWS and Google SDKs at fake, local credentials
// so that opening a bucket neither reads the user's real configuration nor
// probes an instance metadata server. Opening a bucket sends no request;
// credentials are only used on the first read or write.
//
// t.Setenv forbids t.Parallel in these tests.
func offlineCloudEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()

	t.Setenv("AWS_ACCESS_KEY_ID", "x")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "y")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "aws-credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	// Without a credentials file, Google's default-credential lookup asks
	// the GCE metadata server, which needs the network. A service account
	// key (freshly generated, never valid anywhere) avoids that: gcsblob
	// takes the signing identity from it instead of from the metadata
	// server.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	creds, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "reeve-test",
		"private_key_id": "0",
		"private_key":    string(keyPEM),
		"client_email":   "reeve-test@reeve-test.iam.gserviceaccount.com",
		"client_id":      "0",
		"token_uri":      "https://oauth2.googleapis.com/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	credsPath := filepath.Join(dir, "gcp.json")
	if err := os.WriteFile(credsPath, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", credsPath)
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	t.Setenv("STORAGE_EMULATOR_HOST_GRPC", "")
}

func TestLinkedCloudDriversOpen(t *testing.T) {
	offlineCloudEnv(t)
	for _, u := range []string{
		"s3://some-bucket?region=us-east-1",
		"gs://some-bucket",
	} {
		t.Run(u, func(t *testing.T) {
			s, err := result.Open(t.Context(), u)
			if err != nil {
				t.Fatalf("Open(%q) with its driver linked: %v", u, err)
			}
			if s.URL() != u {
				t.Errorf("URL() = %q, want %q (cloud URLs are kept as given)", s.URL(), u)
			}
			again, err := result.Open(t.Context(), u)
			if err != nil || again != s {
				t.Errorf("second Open(%q) = %p, %v; want the memoized store %p", u, again, err, s)
			}
		})
	}
}

func TestUnlinkedDriverStillNamed(t *testing.T) {
	offlineCloudEnv(t)
	_, err := result.Open(t.Context(), "azblob://container")
	if err == nil || !strings.Contains(err.Error(), "`import _ \"gocloud.dev/blob/azureblob\"`") {
		t.Errorf("Open(azblob://) without azureblob linked: err = %v, want the import to add", err)
	}

	_, err = result.Open(t.Context(), "ftp://host/dir")
	if err == nil || !strings.Contains(err.Error(), "this program links file, gs, mem, s3") {
		t.Errorf("unknown scheme error = %v, want it to list the linked schemes file, gs, mem, s3", err)
	}
}
