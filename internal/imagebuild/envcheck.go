package imagebuild

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
)

// credentialWords are words that, in a variable's name, say it holds a
// credential.
var credentialWords = []string{
	"TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWORDS", "PASSWD", "PASSPHRASE",
	"KEY", "KEYS", "APIKEY", "PRIVATE", "CREDENTIAL", "CREDENTIALS", "CREDS", "AUTH", "SESSION", "COOKIE",
}

// credentialPrefixes start values that are credentials whatever their
// variable is called.
var credentialPrefixes = []string{
	"ghp_", "gho_", "ghs_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "sk-", "AKIA", "ASIA", "AIza",
	"-----BEGIN", "eyJ", // PEM blocks and JWTs
}

// CheckEnv refuses environment variables that look like credentials: a
// value baked into an image can be read by everyone who can pull it. A
// variable looks like one when its name has a word such as TOKEN, SECRET,
// PASSWORD, KEY or CREDENTIALS (words are split at anything not a letter
// or digit, so KEYBOARD is fine), or its value starts like a known kind of
// token, holds a password in a URL (scheme://user:pass@host), or looks
// generated (see randomLooking: hex and base64 keys, not words, paths,
// versions or URLs). Names in allow
// are not checked. Every offending variable is named in one error.
func CheckEnv(env, allow []string) error {
	bad := credentialVars(env, allow)
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("--env %s: %s like a credential, and everyone who can pull the image can read it. "+
		"Keep secrets on the server instead: `reeve secret set NAME`, declared by the flow with reeve.Secrets(\"NAME\") "+
		"and read by tasks with reeve.Secret(ctx, \"NAME\"). If it is not a secret, allow it with --allow-env NAME",
		strings.Join(bad, ", "), map[bool]string{true: "looks", false: "look"}[len(bad) == 1])
}

// CheckRunEnv is CheckEnv for a run configuration's variables (given with
// flag, like --run-env): the server keeps them with the flow version, in
// clear, so everyone who can read the flow can read them, and they are in
// every run's container.
func CheckRunEnv(flag string, env, allow []string) error {
	bad := credentialVars(env, allow)
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%s %s: %s like a credential, and run configurations are kept in clear: everyone who can read the flow (reeve flow show, the API) or inspect its runs' containers can read it. "+
		"Keep secrets on the server instead: `reeve secret set NAME`, declared by the flow with reeve.Secrets(\"NAME\") "+
		"and read by tasks with reeve.Secret(ctx, \"NAME\"). If it is not a secret, allow it with --allow-env NAME",
		flag, strings.Join(bad, ", "), map[bool]string{true: "looks", false: "look"}[len(bad) == 1])
}

// credentialVars names the variables of env (NAME=VALUE) not in allow that
// look like credentials, each with why.
func credentialVars(env, allow []string) []string {
	var bad []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if slices.Contains(allow, k) {
			continue
		}
		if why := credentialLike(k, v); why != "" {
			bad = append(bad, fmt.Sprintf("%s (%s)", k, why))
		}
	}
	return bad
}

// credentialLike says why a variable looks like a credential, or "".
func credentialLike(name, value string) string {
	for _, w := range strings.FieldsFunc(strings.ToUpper(name), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if slices.Contains(credentialWords, w) {
			return "its name says " + w
		}
	}
	for _, p := range credentialPrefixes {
		if strings.HasPrefix(value, p) && len(value) >= len(p)+8 {
			return fmt.Sprintf("its value starts like a credential (%s…)", p)
		}
	}
	if scheme, rest, ok := strings.Cut(value, "://"); ok && scheme != "" {
		if userinfo, _, ok := strings.Cut(rest, "@"); ok && strings.Contains(userinfo, ":") && !strings.Contains(userinfo, "/") {
			return "its value is a URL with a password"
		}
		return ""
	}
	if randomLooking(value) {
		return fmt.Sprintf("its value is a random-looking string of %d characters", len(value))
	}
	return ""
}

// randomLooking reports whether v looks like a generated key: at least 20
// characters, nearly all of them the characters of hex, base64 and tokens,
// letters and digits both, and at least 3.5 bits of entropy per character.
// Words, paths, versions and URLs are not.
func randomLooking(v string) bool {
	if len(v) < 20 || strings.ContainsAny(v, " /") {
		return false
	}
	tokenish, letters, digits := 0, 0, 0
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9':
			digits++
			tokenish++
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			letters++
			tokenish++
		case r == '+' || r == '=' || r == '_' || r == '-':
			tokenish++
		}
	}
	return float64(tokenish) >= 0.95*float64(len(v)) && letters > 0 && digits > 0 && entropy(v) >= 3.5
}

// entropy is the Shannon entropy of s in bits per character.
func entropy(s string) float64 {
	counts := map[rune]int{}
	n := 0
	for _, r := range s {
		counts[r]++
		n++
	}
	h := 0.0
	for _, c := range counts {
		p := float64(c) / float64(n)
		h -= p * math.Log2(p)
	}
	return h
}
