package quickadd

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"tasksync/tasks"
)

// The reference of the table: Wednesday 2 December 2026, 10:30 in Berlin
// (CET, UTC+1).
var (
	berlin  = mustZone("Europe/Berlin")
	newYork = mustZone("America/New_York")
	refNow  = time.Date(2026, time.December, 2, 10, 30, 0, 0, berlin)
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// want is what a phrasing must give. due and remind are local times in
// the case's zone ("2006-01-02 15:04"), "" for none; allDay is implied by
// a due of the form "2006-01-02".
type want struct {
	title    string
	due      string
	remind   string
	rule     string
	prio     tasks.Priority
	tags     []string
	unparsed []string
}

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		text string
		want want
	}{
		// Days.
		{"buy milk today", want{title: "buy milk", due: "2026-12-02"}},
		{"buy milk tomorrow", want{title: "buy milk", due: "2026-12-03"}},
		{"tomorrow buy milk", want{title: "buy milk", due: "2026-12-03"}},
		{"buy milk tmrw", want{title: "buy milk", due: "2026-12-03"}},
		{"call the day after tomorrow", want{title: "call", due: "2026-12-04"}},
		{"pay bills yesterday", want{title: "pay bills", due: "2026-12-01"}},
		{"call mom friday", want{title: "call mom", due: "2026-12-04"}},
		{"call mom on Friday", want{title: "call mom", due: "2026-12-04"}},
		{"call mom on fri", want{title: "call mom", due: "2026-12-04"}},
		{"report by Wednesday", want{title: "report", due: "2026-12-09"}},
		{"report this wednesday", want{title: "report", due: "2026-12-02"}},
		{"dentist next Monday", want{title: "dentist", due: "2026-12-07"}},
		{"plan the trip next week", want{title: "plan the trip", due: "2026-12-07"}},
		{"taxes next month", want{title: "taxes", due: "2027-01-01"}},
		{"resolutions next year", want{title: "resolutions", due: "2027-01-01"}},
		{"clean up this weekend", want{title: "clean up", due: "2026-12-05"}},
		{"report end of week", want{title: "report", due: "2026-12-04"}},
		{"invoice by the end of the month", want{title: "invoice", due: "2026-12-31"}},
		{"water plants in 3 days", want{title: "water plants", due: "2026-12-05"}},
		{"renew passport in 2 weeks", want{title: "renew passport", due: "2026-12-16"}},
		{"check in a month", want{title: "check", due: "2027-01-02"}},
		{"gifts on Dec 24", want{title: "gifts", due: "2026-12-24"}},
		{"gifts December 24th", want{title: "gifts", due: "2026-12-24"}},
		{"party on 5 January", want{title: "party", due: "2027-01-05"}},
		{"party on the 5th of January 2028", want{title: "party", due: "2028-01-05"}},
		{"gifts 24/12", want{title: "gifts", due: "2026-12-24"}},
		{"24/12 gifts", want{title: "gifts", due: "2026-12-24"}},
		{"1/2 the cake", want{title: "1/2 the cake"}},
		{"gifts on 24/12/2027", want{title: "gifts", due: "2027-12-24"}},
		{"gifts 12/24", want{title: "gifts", due: "2026-12-24"}},
		{"launch 2027-03-01", want{title: "launch", due: "2027-03-01"}},
		{"rent on the 1st", want{title: "rent", due: "2027-01-01"}},
		{"rent by the 15th", want{title: "rent", due: "2026-12-15"}},
		// Times.
		{"gym at 5pm", want{title: "gym", due: "2026-12-02 17:00"}},
		{"call at 9", want{title: "call", due: "2026-12-03 09:00"}},
		{"call at 9:45 am", want{title: "call", due: "2026-12-03 09:45"}},
		{"standup 9:15am", want{title: "standup", due: "2026-12-03 09:15"}},
		{"train 21:05", want{title: "train", due: "2026-12-02 21:05"}},
		{"lunch at noon", want{title: "lunch", due: "2026-12-02 12:00"}},
		{"noon lunch", want{title: "lunch", due: "2026-12-02 12:00"}},
		{"backup at midnight", want{title: "backup", due: "2026-12-03 00:00"}},
		{"dinner tonight", want{title: "dinner", due: "2026-12-02 20:00"}},
		{"dinner tonight at 9", want{title: "dinner", due: "2026-12-02 21:00"}},
		{"call mom at 5 tomorrow evening", want{title: "call mom", due: "2026-12-03 17:00"}},
		{"call this evening", want{title: "call", due: "2026-12-02 18:00"}},
		{"run tomorrow morning", want{title: "run", due: "2026-12-03 09:00"}},
		{"dentist next Monday at 9", want{title: "dentist", due: "2026-12-07 09:00"}},
		{"sync monday 9am", want{title: "sync", due: "2026-12-07 09:00"}},
		{"at 5pm tomorrow gym", want{title: "gym", due: "2026-12-03 17:00"}},
		{"check oven in 2 hours", want{title: "check oven", due: "2026-12-02 12:30"}},
		{"tea in 30 min", want{title: "tea", due: "2026-12-02 11:00"}},
		{"tea in half an hour", want{title: "tea", due: "2026-12-02 11:00"}},
		{"pick up in 3 days at 9", want{title: "pick up", due: "2026-12-05 09:00"}},
		{"gifts on Dec 24 at 18:00", want{title: "gifts", due: "2026-12-24 18:00"}},
		// Rules: due_at is the first occurrence.
		{"standup every weekday", want{title: "standup", due: "2026-12-02", rule: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"}},
		{"standup every weekday at 9", want{title: "standup", due: "2026-12-03 09:00", rule: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"}},
		{"vitamins every day", want{title: "vitamins", due: "2026-12-02", rule: "FREQ=DAILY"}},
		{"vitamins every day at 8pm", want{title: "vitamins", due: "2026-12-02 20:00", rule: "FREQ=DAILY"}},
		{"water every 3 days", want{title: "water", due: "2026-12-02", rule: "FREQ=DAILY;INTERVAL=3"}},
		{"laundry every week", want{title: "laundry", due: "2026-12-02", rule: "FREQ=WEEKLY"}},
		{"laundry every week at 9", want{title: "laundry", due: "2026-12-09 09:00", rule: "FREQ=WEEKLY"}},
		{"team sync every monday", want{title: "team sync", due: "2026-12-07", rule: "FREQ=WEEKLY;BYDAY=MO"}},
		{"gym every mon, wed and fri at 7", want{title: "gym", due: "2026-12-04 07:00", rule: "FREQ=WEEKLY;BYDAY=MO,WE,FR"}},
		{"review every 2 weeks on Friday", want{title: "review", due: "2026-12-04", rule: "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR"}},
		{"review every other week", want{title: "review", due: "2026-12-02", rule: "FREQ=WEEKLY;INTERVAL=2"}},
		{"Pay rent every month on the 1st !high #home", want{title: "Pay rent", due: "2027-01-01", rule: "FREQ=MONTHLY;BYMONTHDAY=1", prio: tasks.PriorityHigh, tags: []string{"home"}}},
		{"pay rent every 1st", want{title: "pay rent", due: "2027-01-01", rule: "FREQ=MONTHLY;BYMONTHDAY=1"}},
		{"backup every month on the last day", want{title: "backup", due: "2026-12-31", rule: "FREQ=MONTHLY;BYMONTHDAY=-1"}},
		{"birthday every year", want{title: "birthday", due: "2026-12-02", rule: "FREQ=YEARLY"}},
		{"gifts every year on Dec 24", want{title: "gifts", due: "2026-12-24", rule: "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24"}},
		{"anniversary every 14 February", want{title: "anniversary", due: "2027-02-14", rule: "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=14"}},
		{"pills every day for 10 times", want{title: "pills", due: "2026-12-02", rule: "FREQ=DAILY;COUNT=10"}},
		{"advent every day until Dec 24", want{title: "advent", due: "2026-12-02", rule: "FREQ=DAILY;UNTIL=20261224T225959Z"}},
		{"gym every monday starting next week", want{title: "gym", due: "2026-12-07", rule: "FREQ=WEEKLY;BYDAY=MO"}},
		{"advent every day at 7am until Dec 24", want{title: "advent", due: "2026-12-03 07:00", rule: "FREQ=DAILY;UNTIL=20261224T225959Z"}},
		{"pills every day at 8 10 times", want{title: "pills", due: "2026-12-03 08:00", rule: "FREQ=DAILY;COUNT=10"}},
		// Priorities and tags.
		{"buy milk tomorrow at 9 with high priority #home", want{title: "buy milk", due: "2026-12-03 09:00", prio: tasks.PriorityHigh, tags: []string{"home"}}},
		{"taxes p1", want{title: "taxes", prio: tasks.PriorityHigh}},
		{"taxes !low", want{title: "taxes", prio: tasks.PriorityLow}},
		{"taxes priority: medium", want{title: "taxes", prio: tasks.PriorityMedium}},
		{"taxes low-priority", want{title: "taxes", prio: tasks.PriorityLow}},
		{"groceries #home #errands #Home", want{title: "groceries", tags: []string{"home", "errands"}}},
		{"fix issue #12", want{title: "fix issue #12"}},
		// Reminders.
		{"dentist tomorrow at 10 remind me 30 min before", want{title: "dentist", due: "2026-12-03 10:00", remind: "2026-12-03 09:30"}},
		{"dentist tomorrow at 10 remind me at 8am", want{title: "dentist", due: "2026-12-03 10:00", remind: "2026-12-03 08:00"}},
		{"remind me to call mom tomorrow at 6pm", want{title: "call mom", due: "2026-12-03 18:00", remind: "2026-12-03 18:00"}},
		{"stretch remind me in 2 hours", want{title: "stretch", remind: "2026-12-02 12:30"}},
		// Words that stay in the title.
		{"Friday drinks with the team", want{title: "Friday drinks with the team"}},
		{"May I borrow the car", want{title: "May I borrow the car"}},
		{"March with the band", want{title: "March with the band"}},
		{"meeting on the 3rd floor", want{title: "meeting on the 3rd floor"}},
		{"add 1/2 cup sugar", want{title: "add 1/2 cup sugar"}},
		{"check every room", want{title: "check every room"}},
		{"put in 2 eggs", want{title: "put in 2 eggs"}},
		{"read next steps", want{title: "read next steps"}},
		{"meet at the station", want{title: "meet at the station"}},
		{`watch "Tomorrow Never Dies" on Friday`, want{title: `watch "Tomorrow Never Dies"`, due: "2026-12-04"}},
		{"weekly report", want{title: "weekly report"}},
		// Phrases that look like dates but cannot be read.
		{"meet on the 31st of Febtember", want{title: "meet", unparsed: []string{"on the 31st of Febtember"}}},
		{"call at 25:00", want{title: "call", unparsed: []string{"at 25:00"}}},
		{"call 13pm", want{title: "call", unparsed: []string{"13pm"}}},
		{"party on Feb 30", want{title: "party", unparsed: []string{"on Feb 30"}}},
		{"party on 31/02", want{title: "party", unparsed: []string{"on 31/02"}}},
		{"water every 0 days", want{title: "water", unparsed: []string{"every 0 days"}}},
		{"rent every month on the 32nd", want{title: "rent", unparsed: []string{"every month on the 32nd"}}},
		{"ping every hour", want{title: "ping", unparsed: []string{"every hour"}}},
		{"fix !urgent", want{title: "fix", unparsed: []string{"!urgent"}}},
		{"dentist remind me 30 min before", want{title: "dentist", unparsed: []string{"remind me 30 min before"}}},
		{"call tomorrow and on Friday", want{title: "call", due: "2026-12-03", unparsed: []string{"and on Friday"}}},
		{"taxes !high p3", want{title: "taxes", prio: tasks.PriorityHigh, unparsed: []string{"p3"}}},
		{"work on it until Friday", want{title: "work on it", unparsed: []string{"until Friday"}}},
		{"gym every monday until tomorrow", want{title: "gym", unparsed: []string{"every monday until tomorrow"}}},
		{"gym every monday at 9 until 9pm", want{title: "gym", due: "2026-12-07 09:00", rule: "FREQ=WEEKLY;BYDAY=MO", unparsed: []string{"until 9pm"}}},
		{"", want{}},
	}
	if len(cases) < 60 {
		t.Fatalf("%d cases; the table must have at least 60", len(cases))
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			t.Parallel()
			check(t, Parse(c.text, refNow, berlin), c.want, berlin)
		})
	}
}

// TestParseDST: local times stay local across a daylight-saving change.
// Europe/Berlin springs forward on Sunday 29 March 2026 (02:00 -> 03:00),
// America/New_York falls back on Sunday 1 November 2026 (02:00 -> 01:00).
func TestParseDST(t *testing.T) {
	t.Parallel()
	saturday := time.Date(2026, time.March, 28, 10, 0, 0, 0, berlin) // UTC+1
	cases := []struct {
		text  string
		now   time.Time
		loc   *time.Location
		want  want
		utc   string // the instant, to show the offset changed
		label string
	}{
		{"run tomorrow at 9", saturday, berlin, want{title: "run", due: "2026-03-29 09:00"}, "2026-03-29T07:00:00Z", "CEST: 9:00 is 07:00 UTC"},
		{"run in 24 hours", saturday, berlin, want{title: "run", due: "2026-03-29 11:00"}, "2026-03-29T09:00:00Z", "24 h later is 11:00 local"},
		{"run tomorrow at 2:30", saturday, berlin, want{title: "run", due: "2026-03-29 03:30"}, "2026-03-29T01:30:00Z", "02:30 does not exist"},
		{"standup every day at 9", time.Date(2026, time.March, 28, 10, 0, 0, 0, berlin), berlin,
			want{title: "standup", due: "2026-03-29 09:00", rule: "FREQ=DAILY"}, "2026-03-29T07:00:00Z", "first occurrence after the change"},
		{"call tomorrow at 9", time.Date(2026, time.October, 31, 12, 0, 0, 0, newYork), newYork,
			want{title: "call", due: "2026-11-01 09:00"}, "2026-11-01T14:00:00Z", "EST: 9:00 is 14:00 UTC"},
		{"call tomorrow", time.Date(2026, time.October, 31, 12, 0, 0, 0, newYork), newYork,
			want{title: "call", due: "2026-11-01"}, "2026-11-01T04:00:00Z", "midnight still EDT"},
	}
	for _, c := range cases {
		t.Run(c.label, func(t *testing.T) {
			t.Parallel()
			got := Parse(c.text, c.now, c.loc)
			check(t, got, c.want, c.loc)
			if got.DueAt == nil || got.DueAt.UTC().Format(time.RFC3339) != c.utc {
				t.Errorf("due at %v, want %s", got.DueAt, c.utc)
			}
		})
	}
}

func check(t *testing.T, got Result, w want, loc *time.Location) {
	t.Helper()
	if got.Title != w.title {
		t.Errorf("title %q, want %q", got.Title, w.title)
	}
	local := func(at *time.Time, allDay bool) string {
		switch {
		case at == nil:
			return ""
		case at.Location() != loc:
			return "in zone " + at.Location().String()
		case allDay:
			if at.Hour() != 0 || at.Minute() != 0 {
				return "all day at " + at.Format("15:04")
			}
			return at.Format(time.DateOnly)
		}
		return at.Format("2006-01-02 15:04")
	}
	if d := local(got.DueAt, got.AllDay); d != w.due {
		t.Errorf("due %q, want %q", d, w.due)
	}
	if d := local(got.RemindAt, false); d != w.remind {
		t.Errorf("remind %q, want %q", d, w.remind)
	}
	if got.Recurrence != w.rule {
		t.Errorf("rule %q, want %q", got.Recurrence, w.rule)
	}
	if err := checkRule(got); err != nil {
		t.Error(err)
	}
	if got.Priority != w.prio {
		t.Errorf("priority %q, want %q", got.Priority, w.prio)
	}
	if w.tags == nil {
		w.tags = []string{}
	}
	if !slices.Equal(got.Tags, w.tags) {
		t.Errorf("tags %q, want %q", got.Tags, w.tags)
	}
	var frags []string
	for _, f := range got.Unparsed {
		frags = append(frags, f.Text)
		if f.Reason == "" {
			t.Errorf("unparsed %q without a reason", f.Text)
		}
	}
	if !slices.Equal(frags, w.unparsed) {
		t.Errorf("unparsed %q, want %q", frags, w.unparsed)
	}
	checkSpans(t, got)
}

// checkRule: a rule is one the task service runs (teambition/rrule-go
// behind tasks.Rule, DTSTART = due_at in the zone), and due_at is its first
// occurrence, as RFC 5545 wants of DTSTART.
func checkRule(got Result) error {
	if got.Recurrence == "" {
		return nil
	}
	if got.DueAt == nil {
		return fmt.Errorf("rule %q without a due time", got.Recurrence)
	}
	tz := got.DueAt.Location().String()
	r, err := tasks.Rule(tasks.Task{DueAt: got.DueAt, Recurrence: &got.Recurrence, TZ: &tz})
	if err != nil {
		return fmt.Errorf("rule %q refused by the task service: %v", got.Recurrence, err)
	}
	if first := r.After(got.DueAt.Add(-time.Second), true); !first.Equal(*got.DueAt) {
		return fmt.Errorf("rule %q from %v: first occurrence %v, not the due time", got.Recurrence, got.DueAt, first)
	}
	return nil
}

// checkSpans: every understood or unparsed phrase is the text at its
// offsets, none overlap, and none is in the title.
func checkSpans(t *testing.T, got Result) {
	t.Helper()
	end := 0
	type span struct {
		text       string
		start, end int
	}
	var all []span
	for _, s := range got.Understood {
		all = append(all, span{s.Text, s.Start, s.End})
		if s.Value == "" {
			t.Errorf("understood %q (%s) without a value", s.Text, s.Field)
		}
	}
	for _, f := range got.Unparsed {
		all = append(all, span{f.Text, f.Start, f.End})
	}
	slices.SortFunc(all, func(a, b span) int { return a.start - b.start })
	for _, s := range all {
		if s.start < end || s.end < s.start {
			t.Errorf("span %q at %d-%d overlaps the one before (ends %d)", s.text, s.start, s.end, end)
		}
		end = s.end
		if s.text != "" && strings.Contains(" "+got.Title+" ", " "+s.text+" ") {
			t.Errorf("%q is both a phrase and in the title %q", s.text, got.Title)
		}
	}
}

// TestParseSpans checks the reported phrases of one text.
func TestParseSpans(t *testing.T) {
	t.Parallel()
	text := "Pay rent due tomorrow at 9 every month on the 1st with high priority #home at 25:00"
	got := Parse(text, refNow, berlin)
	type sv struct {
		Text  string
		Field Field
		Value string
	}
	var spans []sv
	for _, s := range got.Understood {
		if text[s.Start:s.End] != s.Text {
			t.Errorf("span %q is not the text at %d-%d", s.Text, s.Start, s.End)
		}
		spans = append(spans, sv{s.Text, s.Field, s.Value})
	}
	wantSpans := []sv{
		{"due tomorrow at 9", FieldDueAt, "2027-01-01T08:00:00.000000Z"},
		{"every month on the 1st", FieldRecurrence, "FREQ=MONTHLY;BYMONTHDAY=1"},
		{"with high priority", FieldPriority, "high"},
		{"#home", FieldTags, "home"},
	}
	if !slices.Equal(spans, wantSpans) {
		t.Errorf("understood\n %+v\nwant\n %+v", spans, wantSpans)
	}
	if len(got.Unparsed) != 1 || got.Unparsed[0].Text != "at 25:00" || got.Unparsed[0].Reason != "no such time of day" {
		t.Errorf("unparsed %+v", got.Unparsed)
	}
}
