package page

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestFormat checks the numbers for people against values written out by
// hand.
func TestFormat(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{fmtCount(0), "0"}, {fmtCount(999), "999"}, {fmtCount(1204), "1,204"}, {fmtCount(-1234567), "-1,234,567"},
		{fmtCount(uint64(math.MaxUint64)), "18,446,744,073,709,551,615"},
		{fmtMs(0), "0 ms"}, {fmtMs(0.004), "0.004 ms"}, {fmtMs(0.42), "0.42 ms"}, {fmtMs(3.21), "3.2 ms"}, {fmtMs(120.4), "120 ms"},
		{fmtMs(1400), "1.4 s"}, {fmtMs(150_000), "2.5 min"}, {fmtMs(11_160_000), "3.1 h"}, {fmtMs(172_800_000), "2.0 d"},
		{fmtMs(-3.21), "-3.2 ms"}, {fmtMs(math.NaN()), "–"}, {fmtMs(math.Inf(1)), "–"},
		{fmtBytes(512), "512 B"}, {fmtBytes(1434), "1.4 KiB"}, {fmtBytes(3 << 20), "3.0 MiB"}, {fmtBytes(20 << 30), "20 GiB"},
		{fmtPercent(100), "100%"}, {fmtPercent(75), "75%"}, {fmtPercent(0.5), "0.5%"}, {fmtPercent(0), "0%"},
		{exactMs(1.25), "1.25 ms"}, {exactBytes(1024), "1024 bytes"},
		{fmtStep(time.Second), "1s"}, {fmtStep(30 * time.Second), "30s"}, {fmtStep(5 * time.Minute), "5m"}, {fmtStep(time.Hour), "1h"},
		{fmtStep(90 * time.Minute), "1h30m"}, {fmtStep(48 * time.Hour), "2 days"},
		{fmtAge(24 * time.Hour), "1 day"}, {fmtAge(36 * time.Hour), "36h0m0s"},
		{opLabel("subscribe_exact"), "subscribe exact"}, {opLabel("notify"), "notify"}, {opLabel("other"), "other"},
		{clipLabel(strings.Repeat("é", 28)), strings.Repeat("é", 28)}, {clipLabel(strings.Repeat("é", 29)), strings.Repeat("é", 27) + "…"},
	} {
		if c.got != c.want {
			t.Errorf("got %q; want %q", c.got, c.want)
		}
	}
}

// TestRender_Error checks that a page with a bad parameter shows the form
// with the message, the parameters as typed, and no answer.
func TestRender_Error(t *testing.T) {
	b, err := Render(&Main{Error: `bad tz "Mars/Olympus": want an IANA time zone`, Form: Form{Since: "1h-ago", Until: "now", TZ: "Mars/Olympus", Topic: "<b>orders</b>"}})
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{`bad tz &#34;Mars/Olympus&#34;`, `value="Mars/Olympus"`, `&lt;b&gt;orders&lt;/b&gt;`} {
		if !strings.Contains(page, want) {
			t.Errorf("error page lacks %s", want)
		}
	}
	for _, absent := range []string{`id="sentence"`, `id="pubsub-map"`, "<b>orders</b>"} {
		if strings.Contains(page, absent) {
			t.Errorf("error page shows %s", absent)
		}
	}
}
