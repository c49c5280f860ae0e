package otelsetup

import (
	"testing"
	"time"
)

func TestParseAge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7d", 7 * 24 * time.Hour, true}, {"1.5d", 36 * time.Hour, true}, {"0", 0, true},
		{"168h", 168 * time.Hour, true}, {"90m", 90 * time.Minute, true}, {"0d", 0, true},
		{"", 0, false}, {"d", 0, false}, {"-1d", 0, false}, {"-5m", 0, false}, {"7 days", 0, false},
		{"1e300d", 0, false}, {"NaNd", 0, false}, {"week", 0, false},
	} {
		got, err := parseAge(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseAge(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1GiB", 1 << 30, true}, {"500MB", 500e6, true}, {"1048576", 1 << 20, true}, {"0", 0, true},
		{"1.5 GiB", 3 << 29, true}, {"2g", 2 << 30, true}, {"10kB", 10e3, true}, {"64KiB", 64 << 10, true},
		{"1TB", 1e12, true}, {"12b", 12, true},
		{"", 0, false}, {"GiB", 0, false}, {"-1MB", 0, false}, {"1 PiB", 0, false}, {"1e3", 0, false},
		{"10000000TiB", 0, false}, {"1..2MB", 0, false},
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
