package tasks

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	// The zone database inside the binary: tz names must mean the same on
	// every machine, including one without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/teambition/rrule-go"
)

// The recurrence frequencies a rule may have. HOURLY, MINUTELY and
// SECONDLY are refused: a todo list is not a timer.
var ruleFreqs = map[string]rrule.Frequency{
	"DAILY":   rrule.DAILY,
	"WEEKLY":  rrule.WEEKLY,
	"MONTHLY": rrule.MONTHLY,
	"YEARLY":  rrule.YEARLY,
}

// Location returns the zone a task's rule is evaluated in: tz, or UTC for
// nil. Only IANA names are accepted ("Local", the server's own zone, is not).
func Location(tz *string) (*time.Location, error) {
	if tz == nil {
		return time.UTC, nil
	}
	name := *tz
	if name == "" || len(name) > MaxTZ || name == "Local" || !storableText(name) {
		return nil, fmt.Errorf("must be an IANA time zone name such as Europe/Berlin")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("must be an IANA time zone name such as Europe/Berlin (%q is unknown)", name)
	}
	return loc, nil
}

// Rule returns the recurrence rule of t, starting at its due time in its
// zone, so that occurrences keep their local wall-clock time across
// daylight-saving changes. It fails for a task without recurrence or due
// time, and for a rule check would refuse.
func Rule(t Task) (*rrule.RRule, error) {
	if t.Recurrence == nil {
		return nil, fmt.Errorf("task has no recurrence")
	}
	if t.DueAt == nil {
		return nil, fmt.Errorf("needs due_at: the rule's first occurrence")
	}
	loc, err := Location(t.TZ)
	if err != nil {
		return nil, fmt.Errorf("tz %w", err)
	}
	return parseRule(*t.Recurrence, t.DueAt.In(loc))
}

// parseRule reads an RRULE (without "RRULE:") that starts at dtstart.
func parseRule(rule string, dtstart time.Time) (*rrule.RRule, error) {
	if len(rule) > MaxRecurrence {
		return nil, fmt.Errorf("must be at most %d characters", MaxRecurrence)
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(rule, ";") {
		key, value, ok := strings.Cut(part, "=")
		if !ok || key == "" || value == "" {
			return nil, fmt.Errorf("must be an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO,WE,FR (%q is not KEY=VALUE)", part)
		}
		if seen[key] {
			return nil, fmt.Errorf("names %s twice", key)
		}
		seen[key] = true
		switch key {
		case "FREQ":
			if _, ok := ruleFreqs[value]; !ok {
				return nil, fmt.Errorf("FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY")
			}
		case "DTSTART":
			return nil, fmt.Errorf("must not hold DTSTART: the rule starts at due_at")
		case "INTERVAL", "COUNT":
			if n, err := strconv.Atoi(value); err != nil || n < 1 {
				return nil, fmt.Errorf("%s must be a whole number of at least 1", key)
			}
		}
	}
	if !seen["FREQ"] {
		return nil, fmt.Errorf("needs FREQ (DAILY, WEEKLY, MONTHLY or YEARLY)")
	}
	if seen["COUNT"] && seen["UNTIL"] {
		return nil, fmt.Errorf("may have COUNT or UNTIL, not both")
	}
	opt, err := rrule.StrToROptionInLocation(rule, dtstart.Location())
	if err != nil {
		return nil, fmt.Errorf("must be an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO,WE,FR (%v)", err)
	}
	opt.Dtstart = dtstart
	r, err := rrule.NewRRule(*opt)
	if err != nil {
		return nil, fmt.Errorf("must be an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO,WE,FR (%v)", err)
	}
	return r, nil
}

// checkTimeFields validates the time fields of t (tz, recurrence) into fields.
func checkTimeFields(t Task, fields map[string]string) {
	if _, err := Location(t.TZ); err != nil {
		fields["tz"] = err.Error()
		return
	}
	if t.Recurrence == nil {
		return
	}
	if t.DueAt == nil {
		fields["recurrence"] = "needs due_at: the rule's first occurrence"
		return
	}
	r, err := Rule(t)
	if err != nil {
		fields["recurrence"] = err.Error()
		return
	}
	// A rule that can never happen (FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30)
	// is refused now rather than found out when completing the task.
	if r.After(*t.DueAt, true).IsZero() {
		fields["recurrence"] = "has no occurrence from due_at on (check BYMONTH, BYMONTHDAY, COUNT and UNTIL)"
	}
}
