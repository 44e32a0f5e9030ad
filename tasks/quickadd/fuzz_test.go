package quickadd

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParse: any text, however odd, parses without panicking into a
// result whose phrases are the text at their offsets, whose times are in
// the zone asked for, and whose rule has a first occurrence.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Pay rent every month on the 1st !high #home",
		"buy milk tomorrow at 9 with high priority #home",
		"meet on the 31st of Febtember at 25:00",
		"every 2 weeks on Friday until Dec 24 remind me 30 min before",
		`"quoted tomorrow" "unclosed at 9`,
		"in 99999 years every 9999 years on Feb 29 for 999 times",
		"remind me remind me every every on on the the",
		"12/24/2026 2026-02-30 9.30pm 12am 0am 24:00 #é #1 !! p1 p2",
		"every year on the 29th of February at 23:59",
	} {
		f.Add(s, int64(0))
	}
	zones := []*time.Location{time.UTC, berlin, newYork}
	f.Fuzz(func(t *testing.T, text string, offset int64) {
		if len(text) > 4*MaxText {
			return
		}
		loc := zones[uint64(offset)%uint64(len(zones))]
		// Any reference time within years 1900-2200.
		now := time.Unix(-2208988800+int64(uint64(offset)%(300*365*86400)), 0)
		got := Parse(text, now, loc)
		for _, s := range got.Understood {
			if s.Start < 0 || s.End > len(text) || s.Start > s.End || text[s.Start:s.End] != s.Text {
				t.Fatalf("understood %+v is not the text at its offsets", s)
			}
			if s.Value == "" {
				t.Fatalf("understood %+v has no value", s)
			}
		}
		for _, u := range got.Unparsed {
			if u.Start < 0 || u.End > len(text) || u.Start > u.End || text[u.Start:u.End] != u.Text || u.Reason == "" {
				t.Fatalf("unparsed %+v is not the text at its offsets, or has no reason", u)
			}
		}
		for _, at := range []*time.Time{got.DueAt, got.RemindAt} {
			if at != nil && (at.Location() != loc || !inRange(*at)) {
				t.Fatalf("time %v not in %v or out of range", at, loc)
			}
		}
		if err := checkRule(got); err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if len(got.Title) > len(text) || utf8.ValidString(text) && !utf8.ValidString(got.Title) {
			t.Fatalf("title %q from %q", got.Title, text)
		}
		if _, err := json.Marshal(NewResponse(got, loc)); err != nil {
			t.Fatal(err)
		}
	})
}
