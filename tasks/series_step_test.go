package tasks

import (
	"testing"
	"time"
)

// TestNextOccurrenceSteps walks each rule form step by step, the way
// completing occurrence after occurrence does: every step starts again
// from the occurrence before (DTSTART = its due time, COUNT as it carries).
func TestNextOccurrenceSteps(t *testing.T) {
	t.Parallel()
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	tests := []struct {
		name  string
		rule  string
		tz    string
		start string
		want  []string // due times of the next occurrences, in order; the series ends after the last
		rules []string // the rule each of them carries (nil: the rule unchanged)
		ends  bool     // the series ends after want
	}{
		{name: "daily", rule: "FREQ=DAILY", start: "2026-03-01T08:30:00Z",
			want: []string{"2026-03-02T08:30:00Z", "2026-03-03T08:30:00Z", "2026-03-04T08:30:00Z"}},
		{name: "daily interval 3", rule: "FREQ=DAILY;INTERVAL=3", start: "2026-02-27T08:30:00Z",
			want: []string{"2026-03-02T08:30:00Z", "2026-03-05T08:30:00Z"}},
		{name: "weekly mon wed fri", rule: "FREQ=WEEKLY;BYDAY=MO,WE,FR", start: "2026-12-02T17:00:00Z", // a Wednesday
			want: []string{"2026-12-04T17:00:00Z", "2026-12-07T17:00:00Z", "2026-12-09T17:00:00Z", "2026-12-11T17:00:00Z", "2026-12-14T17:00:00Z"}},
		{name: "weekly off-rule start", rule: "FREQ=WEEKLY;BYDAY=MO,WE,FR", start: "2026-12-01T17:00:00Z", // a Tuesday
			want: []string{"2026-12-02T17:00:00Z", "2026-12-04T17:00:00Z"}},
		{name: "every other week mon fri", rule: "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR", start: "2026-12-04T09:00:00Z", // a Friday
			want: []string{"2026-12-14T09:00:00Z", "2026-12-18T09:00:00Z", "2026-12-28T09:00:00Z"}},
		{name: "monthly on the 1st", rule: "FREQ=MONTHLY;BYMONTHDAY=1", start: "2026-11-20T07:00:00Z",
			want: []string{"2026-12-01T07:00:00Z", "2027-01-01T07:00:00Z", "2027-02-01T07:00:00Z"}},
		{name: "monthly on the 31st skips short months", rule: "FREQ=MONTHLY;BYMONTHDAY=31", start: "2027-01-31T07:00:00Z",
			want: []string{"2027-03-31T07:00:00Z", "2027-05-31T07:00:00Z"}},
		{name: "quarterly", rule: "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1", start: "2027-01-01T07:00:00Z",
			want: []string{"2027-04-01T07:00:00Z", "2027-07-01T07:00:00Z"}},
		{name: "count 3 ends after two more", rule: "FREQ=DAILY;COUNT=3", start: "2026-05-01T10:00:00Z",
			want:  []string{"2026-05-02T10:00:00Z", "2026-05-03T10:00:00Z"},
			rules: []string{"FREQ=DAILY;COUNT=2", "FREQ=DAILY;COUNT=1"}, ends: true},
		{name: "count keeps the other parts in place", rule: "FREQ=WEEKLY;COUNT=2;BYDAY=MO", start: "2026-12-07T09:00:00Z",
			want:  []string{"2026-12-14T09:00:00Z"},
			rules: []string{"FREQ=WEEKLY;COUNT=1;BYDAY=MO"}, ends: true},
		{name: "count 1 is the last", rule: "FREQ=DAILY;COUNT=1", start: "2026-05-01T10:00:00Z", ends: true},
		{name: "until inclusive", rule: "FREQ=DAILY;UNTIL=20260503T100000Z", start: "2026-05-01T10:00:00Z",
			want: []string{"2026-05-02T10:00:00Z", "2026-05-03T10:00:00Z"}, ends: true},
		{name: "until local time in tz", rule: "FREQ=DAILY;UNTIL=20260503T120000", tz: "Europe/Berlin", start: "2026-05-01T10:00:00Z", // 12:00 CEST
			want: []string{"2026-05-02T10:00:00Z", "2026-05-03T10:00:00Z"}, ends: true},
		{name: "until before the next", rule: "FREQ=WEEKLY;UNTIL=20260505T000000Z", start: "2026-05-01T10:00:00Z", ends: true},
		{name: "never again", rule: "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", start: "2026-05-01T10:00:00Z", ends: true},
		// New York leaves daylight saving time on 2026-11-01: 09:00 EDT is
		// 13:00Z, 09:00 EST is 14:00Z.
		{name: "dst new york weekly", rule: "FREQ=WEEKLY;BYDAY=MO", tz: "America/New_York", start: "2026-10-26T13:00:00Z",
			want: []string{"2026-11-02T14:00:00Z", "2026-11-09T14:00:00Z"}},
		{name: "dst new york daily across the night itself", rule: "FREQ=DAILY", tz: "America/New_York", start: "2026-10-31T13:00:00Z",
			want: []string{"2026-11-01T14:00:00Z", "2026-11-02T14:00:00Z"}},
		// Berlin enters summer time on 2027-03-28: 09:00 CET is 08:00Z,
		// 09:00 CEST is 07:00Z.
		{name: "dst berlin weekly", rule: "FREQ=WEEKLY;BYDAY=SU", tz: "Europe/Berlin", start: "2027-03-21T08:00:00Z",
			want: []string{"2027-03-28T07:00:00Z", "2027-04-04T07:00:00Z"}},
		{name: "utc rule is not dst safe by design", rule: "FREQ=WEEKLY;BYDAY=MO", start: "2026-10-26T13:00:00Z",
			want: []string{"2026-11-02T13:00:00Z"}},
		{name: "fraction of a second", rule: "FREQ=DAILY", start: "2026-05-01T10:00:00.5Z",
			want: []string{"2026-05-02T10:00:00Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			due, rule := utc(tc.start), tc.rule
			for i := 0; ; i++ {
				task := Task{DueAt: &due, Recurrence: &rule}
				if tc.tz != "" {
					task.TZ = &tc.tz
				}
				next, nextRule, ok, err := nextOccurrence(task)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if i == len(tc.want) {
					if ok && tc.ends {
						t.Fatalf("step %d: next %s (%s), want the series to end", i, next.Format(time.RFC3339), nextRule)
					}
					return
				}
				if !ok {
					t.Fatalf("step %d: series ended, want %s", i, tc.want[i])
				}
				if want := utc(tc.want[i]); !next.Equal(want) {
					t.Fatalf("step %d: next %s, want %s", i, next.Format(time.RFC3339), tc.want[i])
				}
				wantRule := tc.rule
				if tc.rules != nil {
					wantRule = tc.rules[i]
				}
				if nextRule != wantRule {
					t.Fatalf("step %d: rule %q, want %q", i, nextRule, wantRule)
				}
				due, rule = next, nextRule
			}
		})
	}
}

func TestNextOccurrenceRefusesWhatValidationRefuses(t *testing.T) {
	t.Parallel()
	due := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	if _, _, _, err := nextOccurrence(Task{DueAt: &due, Recurrence: ptr("FREQ=DAILY"), TZ: ptr("Mars/Olympus")}); err == nil {
		t.Error("unknown zone: no error")
	}
	if _, _, _, err := nextOccurrence(Task{DueAt: &due, Recurrence: ptr("FREQ=SOMETIMES")}); err == nil {
		t.Error("unknown FREQ: no error")
	}
}
