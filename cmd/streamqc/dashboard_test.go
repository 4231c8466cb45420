package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDashboardSecurity: loopback may go bare; anything else needs TLS and
// a token from a file.
func TestDashboardSecurity(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(good, []byte("  0123456789abcdef-xyz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		listen, cert, key, auth string
		token, err              string
	}{
		{"127.0.0.1:8090", "", "", "", "", ""},
		{"localhost:0", "", "", "", "", ""},
		{"[::1]:8090", "", "", good, "0123456789abcdef-xyz", ""},
		{":8090", "", "", "", "", "not a loopback address"},
		{"0.0.0.0:8090", "c.pem", "k.pem", "", "", "not a loopback address"},
		{"192.0.2.1:8090", "", "", good, "", "not a loopback address"},
		{"192.0.2.1:8090", "c.pem", "k.pem", good, "0123456789abcdef-xyz", ""},
		{"192.0.2.1:8090", "c.pem", "", good, "", "go together"},
		{"127.0.0.1:8090", "", "", short, "", "at least 16"},
		{"127.0.0.1:8090", "", "", filepath.Join(dir, "absent"), "", "no such file"},
		{"8090", "", "", "", "", "--listen"},
	}
	for _, tc := range tests {
		token, err := dashboardSecurity(tc.listen, tc.cert, tc.key, tc.auth)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.listen, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s %s %s %s: err %v, want %q", tc.listen, tc.cert, tc.key, tc.auth, err, tc.err)
		case token != tc.token:
			t.Errorf("%s: token %q, want %q", tc.listen, token, tc.token)
		}
	}
}
