package quickadd

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// civil is a calendar date without a zone.
type civil struct {
	y int
	m time.Month
	d int
}

func civilOf(t time.Time) civil {
	y, m, d := t.Date()
	return civil{y, m, d}
}

// noonUTC is the date at noon UTC: arithmetic on it never meets a DST gap.
func (c civil) noonUTC() time.Time { return time.Date(c.y, c.m, c.d, 12, 0, 0, 0, time.UTC) }

func (c civil) addDays(n int) civil { return civilOf(c.noonUTC().AddDate(0, 0, n)) }

// addMonths moves by n months, keeping the day when the month has it and
// taking the month's last day when it does not (Jan 31 + 1 month = Feb 28),
// as people mean it; time.AddDate would give Mar 3.
func (c civil) addMonths(n int) civil {
	first := time.Date(c.y, c.m, 1, 12, 0, 0, 0, time.UTC).AddDate(0, n, 0)
	d := min(c.d, daysIn(first.Year(), first.Month()))
	return civil{first.Year(), first.Month(), d}
}

func (c civil) weekday() time.Weekday { return c.noonUTC().Weekday() }

func (c civil) before(o civil) bool {
	if c.y != o.y {
		return c.y < o.y
	}
	if c.m != o.m {
		return c.m < o.m
	}
	return c.d < o.d
}

// at is the date at the clock in loc. A clock time that does not exist on
// that day (skipped by a DST change) is moved forward by the gap, as
// time.Date does: 02:30 on the spring-forward day in Europe/Berlin is 03:30.
func (c civil) at(k clock, loc *time.Location) time.Time {
	return time.Date(c.y, c.m, c.d, k.h, k.m, 0, 0, loc)
}

func (c civil) valid() bool {
	return c.y >= 1 && c.y <= 9999 && c.m >= 1 && c.m <= 12 && c.d >= 1 && c.d <= daysIn(c.y, c.m)
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 12, 0, 0, 0, time.UTC).Day()
}

// clock is a time of day. soft: named by a part of the day ("tomorrow
// evening"), so an explicit time replaces it. plain: written without am/pm
// ("at 9"), so after an evening it means 21:00.
type clock struct {
	h, m  int
	soft  bool
	plain bool
}

// nextWeekday is the first day after from (strictly) that is d; with
// today set, from itself counts.
func nextWeekday(from civil, d time.Weekday, today bool) civil {
	n := (int(d) - int(from.weekday()) + 7) % 7
	if n == 0 && !today {
		n = 7
	}
	return from.addDays(n)
}

// nextMonthDay is the first date on or after from with day of month d,
// skipping months that do not have it.
func nextMonthDay(from civil, d int) (civil, bool) {
	if d < 1 || d > 31 {
		return civil{}, false
	}
	y, m := from.y, from.m
	for range 13 {
		c := civil{y, m, d}
		if c.valid() && !c.before(from) {
			return c, true
		}
		m++
		if m > 12 {
			m, y = 1, y+1
		}
	}
	return civil{}, false
}

// nextDate is the first date on or after from that falls on month m, day d
// (Feb 29 waits for a leap year).
func nextDate(from civil, m time.Month, d int) (civil, bool) {
	for y := from.y; y <= from.y+8; y++ {
		c := civil{y, m, d}
		if c.valid() && !c.before(from) {
			return c, true
		}
	}
	return civil{}, false
}

// Frequencies of a rule (RFC 5545 FREQ). HOURLY and shorter are not
// offered: the server refuses them.
type freq string

const (
	freqDaily   freq = "DAILY"
	freqWeekly  freq = "WEEKLY"
	freqMonthly freq = "MONTHLY"
	freqYearly  freq = "YEARLY"
)

// rule is a recurrence read from "every ...".
type rule struct {
	freq       freq
	interval   int
	byDay      []time.Weekday // in the order Monday..Sunday
	byMonth    time.Month
	byMonthDay int // 1..31, or -1 for the last day
	count      int
	until      *civil // last day (inclusive) in the task's zone
}

// text is the rule as RFC 5545 RRULE text, without "RRULE:".
func (r rule) text(loc *time.Location) string {
	var b strings.Builder
	b.WriteString("FREQ=" + string(r.freq))
	if r.interval > 1 {
		b.WriteString(";INTERVAL=" + strconv.Itoa(r.interval))
	}
	if len(r.byDay) > 0 {
		days := make([]string, len(r.byDay))
		for i, d := range r.byDay {
			days[i] = rruleDays[d]
		}
		b.WriteString(";BYDAY=" + strings.Join(days, ","))
	}
	if r.byMonth != 0 {
		b.WriteString(";BYMONTH=" + strconv.Itoa(int(r.byMonth)))
	}
	if r.byMonthDay != 0 {
		b.WriteString(";BYMONTHDAY=" + strconv.Itoa(r.byMonthDay))
	}
	if r.count > 0 {
		b.WriteString(";COUNT=" + strconv.Itoa(r.count))
	}
	if r.until != nil {
		// RFC 5545: with a zoned DTSTART, UNTIL is in UTC. The end of
		// the last day in the task's zone.
		end := r.until.at(clock{h: 23, m: 59}, loc).Add(59 * time.Second).UTC()
		b.WriteString(";UNTIL=" + end.Format("20060102T150405Z"))
	}
	return b.String()
}

// matches reports whether day c is one the rule's BY parts allow (the
// interval is measured from the first occurrence, which this finds).
func (r rule) matches(c civil) bool {
	if len(r.byDay) > 0 {
		found := false
		for _, d := range r.byDay {
			found = found || d == c.weekday()
		}
		if !found {
			return false
		}
	}
	if r.byMonth != 0 && c.m != r.byMonth {
		return false
	}
	switch {
	case r.byMonthDay > 0:
		return c.d == r.byMonthDay
	case r.byMonthDay < 0:
		return c.d == daysIn(c.y, c.m)
	}
	return true
}

// restricted reports whether the rule names days (else every day it
// starts on is a first occurrence).
func (r rule) restricted() bool {
	return len(r.byDay) > 0 || r.byMonth != 0 || r.byMonthDay != 0
}

// step is the date one interval after c.
func (r rule) step(c civil) civil {
	switch r.freq {
	case freqDaily:
		return c.addDays(r.interval)
	case freqWeekly:
		return c.addDays(7 * r.interval)
	case freqMonthly:
		return c.addMonths(r.interval)
	default:
		return c.addMonths(12 * r.interval)
	}
}

// first is the rule's first occurrence on or after from: at k when a time
// of day is given (and then not earlier than now), else the whole day.
func (r rule) first(from civil, k *clock, now time.Time, loc *time.Location) (civil, error) {
	late := func(c civil) bool { return k != nil && !c.at(*k, loc).After(now) }
	if !r.restricted() {
		c := from
		if late(c) {
			c = r.step(c)
		}
		return c, nil
	}
	// BYMONTHDAY=31 skips short months, Feb 29 waits for a leap year: at
	// most 8 years.
	c := from
	for range 366*8 + 2 {
		if r.matches(c) && !late(c) {
			return c, nil
		}
		c = c.addDays(1)
	}
	return civil{}, fmt.Errorf("the rule has no date in the next 8 years")
}
