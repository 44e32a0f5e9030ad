package quickadd

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"tasksync/tasks"
)

// match is one phrase the grammar read at a token position.
type match struct {
	n     int   // tokens read
	field Field // what it sets
	// weak: read only when nothing but other understood phrases, joining
	// words or the end of the text follows ("call mom friday" but not
	// "Friday drinks").
	weak bool
	// bad: the phrase looks like a date, time, rule or label but cannot
	// be read (why, for people); it is reported, never put in the title.
	bad string

	date   *civil
	clock  *clock
	at     *time.Time    // an exact instant ("in 2 hours")
	before time.Duration // remind: this long before the due time
	atDue  bool          // remind: at the due time ("remind me to ...")
	ending bool          // recurrence: only the end of a rule, in rule
	rule   *rule
	prio   tasks.Priority
	tag    string
}

// parser reads one text.
type parser struct {
	toks  []token
	now   time.Time // in loc
	loc   *time.Location
	today civil
}

func (p *parser) word(i int) string {
	if i < 0 || i >= len(p.toks) || p.toks[i].quoted {
		return ""
	}
	return p.toks[i].word
}

// longest tries every phrase at i and keeps the one that reads the most
// tokens (the first of equals).
func (p *parser) longest(i int, matchers ...func(int) (match, bool)) (match, bool) {
	var best match
	found := false
	for _, f := range matchers {
		m, ok := f(i)
		// A refused phrase may name a token past the end ("every
		// week on"): it ends with the text.
		m.n = min(m.n, len(p.toks)-i)
		if ok && m.n > best.n {
			best, found = m, true
		}
	}
	return best, found
}

// at is the phrase starting at token i, if any.
func (p *parser) at(i int) (match, bool) {
	if p.toks[i].quoted || p.toks[i].word == "" {
		return match{}, false
	}
	return p.longest(i, p.tag, p.priority, p.remind, p.every, p.ruleEnd, p.when)
}

// when reads a date or a time of the due date.
func (p *parser) when(i int) (match, bool) {
	m, ok := p.longest(i, p.relativeDay, p.weekdayPhrase, p.inCount, p.monthDate, p.numericDate, p.ordinalDate, p.timePhrase)
	m.field = FieldDueAt
	return m, ok
}

// tag reads "#home". A tag starts with a letter ("#1" is an issue number,
// not a tag) and holds letters, digits, "_", "-", "/" and ".".
func (p *parser) tag(i int) (match, bool) {
	raw := strings.TrimRight(p.toks[i].raw, ",.;:!?)")
	name, ok := strings.CutPrefix(raw, "#")
	if !ok || name == "" {
		return match{}, false
	}
	if r, _ := utf8.DecodeRuneInString(name); !unicode.IsLetter(r) {
		return match{}, false
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("_-/.", r) {
			return match{}, false
		}
	}
	if utf8.RuneCountInString(name) > tasks.MaxTag {
		return match{n: 1, field: FieldTags, bad: "a tag is at most 50 characters"}, true
	}
	return match{n: 1, field: FieldTags, tag: name}, true
}

var priorityWords = map[string]tasks.Priority{
	"high": tasks.PriorityHigh, "medium": tasks.PriorityMedium, "normal": tasks.PriorityMedium,
	"med": tasks.PriorityMedium, "low": tasks.PriorityLow,
	"1": tasks.PriorityHigh, "2": tasks.PriorityMedium, "3": tasks.PriorityLow,
}

// priority reads "high priority", "priority high", "priority: 1",
// "!high", "!1", "p1" (p1 high, p2 medium, p3 low, as Todoist users
// write them).
func (p *parser) priority(i int) (match, bool) {
	w := p.word(i)
	prio := func(n int, level tasks.Priority) (match, bool) {
		return match{n: n, field: FieldPriority, prio: level}, true
	}
	if level, ok := strings.CutPrefix(w, "!"); ok && level != "" {
		if pr, ok := priorityWords[level]; ok {
			return prio(1, pr)
		}
		if isWord(level) {
			return match{n: 1, field: FieldPriority, bad: "priorities are !high, !medium and !low"}, true
		}
		return match{}, false
	}
	switch w {
	case "p1":
		return prio(1, tasks.PriorityHigh)
	case "p2":
		return prio(1, tasks.PriorityMedium)
	case "p3":
		return prio(1, tasks.PriorityLow)
	case "priority", "prio":
		if pr, ok := priorityWords[p.word(i+1)]; ok {
			return prio(2, pr)
		}
		return match{}, false
	}
	if level, ok := strings.CutSuffix(w, "-priority"); ok {
		if pr, ok := priorityWords[level]; ok && !allDigits(level) {
			return prio(1, pr)
		}
	}
	if pr, ok := priorityWords[w]; ok && !allDigits(w) {
		if next := p.word(i + 1); next == "priority" || next == "prio" {
			return prio(2, pr)
		}
	}
	return match{}, false
}

func isWord(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return s != ""
}

// remind reads "remind me 30 min before", "remind me at 8am",
// "remind me tomorrow at 9", "remind me in 2 hours".
func (p *parser) remind(i int) (match, bool) {
	if p.word(i) != "remind" {
		return match{}, false
	}
	j := i + 1
	if p.word(j) != "me" {
		return match{}, false
	}
	j++
	m := match{field: FieldRemindAt}
	// "30 min before", "1 hour earlier"
	if n, big, ok := count(p.word(j)); ok {
		if u, ok := unitNames[p.word(j+1)]; ok && (p.word(j+2) == "before" || p.word(j+2) == "earlier") {
			m.n = j + 3 - i
			return p.remindBefore(m, n, u, big)
		}
	}
	if n, u, big, ok := countUnit(p.word(j)); ok && (p.word(j+1) == "before" || p.word(j+1) == "earlier") {
		m.n = j + 2 - i
		return p.remindBefore(m, n, u, big)
	}
	// A date and/or a time ("at 8am", "tomorrow at 9", "on Friday").
	read := false
	for j < len(p.toks) {
		w, ok := p.when(j)
		if !ok {
			break
		}
		if w.bad != "" {
			m.bad = w.bad
			j += w.n
			break
		}
		if (m.date != nil || m.at != nil) && (w.date != nil || w.at != nil) || (m.clock != nil || m.at != nil) && (w.clock != nil || w.at != nil) {
			break // a second date or time: not the reminder's
		}
		if w.date != nil {
			m.date = w.date
		}
		if w.clock != nil {
			m.clock = w.clock
		}
		if w.at != nil {
			m.at = w.at
		}
		read = true
		j += w.n
	}
	if !read && m.bad == "" {
		// "remind me to call mom tomorrow": at the due time.
		m.atDue = true
		if p.word(j) == "to" {
			j++
		}
	}
	m.n = j - i
	return m, true
}

func (p *parser) remindBefore(m match, n int, u unit, big bool) (match, bool) {
	switch {
	case big:
		m.bad = "the number is too large"
	case u == unitMonth || u == unitYear:
		m.bad = "a reminder can be minutes, hours, days or weeks before"
	default:
		d := u.duration()
		if u == unitDay {
			d = 24 * time.Hour
		} else if u == unitWeek {
			d = 7 * 24 * time.Hour
		}
		m.before = time.Duration(n) * d
	}
	return m, true
}

// relativeDay reads today, tomorrow, tonight, this evening, the day after
// tomorrow, next week, end of month, ... with an optional part of the day
// after a day ("tomorrow morning").
func (p *parser) relativeDay(i int) (match, bool) {
	w := p.word(i)
	m := match{field: FieldDueAt}
	day := func(c civil, n int) (match, bool) {
		m.date, m.n = &c, n
		if k, ok := periodClocks[p.word(i+n)]; ok {
			m.clock = &k
			m.n++
		}
		return m, true
	}
	switch w {
	case "today", "tod":
		return day(p.today, 1)
	case "tomorrow", "tmrw", "tmr", "tomorow":
		return day(p.today.addDays(1), 1)
	case "yesterday":
		return day(p.today.addDays(-1), 1)
	case "tonight":
		k := periodClocks["night"]
		m.date, m.clock, m.n = &p.today, &k, 1
		return m, true
	case "day", "the":
		j := i
		if w == "the" {
			j++
			if p.word(j) == "end" {
				if m, ok := p.relativeDay(j); ok {
					m.n++
					return m, true
				}
			}
		}
		if p.word(j) == "day" && p.word(j+1) == "after" && p.word(j+2) == "tomorrow" {
			return day(p.today.addDays(2), j+3-i)
		}
	case "this":
		if k, ok := periodClocks[p.word(i+1)]; ok && p.word(i+1) != "noon" && p.word(i+1) != "midnight" {
			m.date, m.clock, m.n = &p.today, &k, 2
			return m, true
		}
		if p.word(i+1) == "weekend" {
			return day(nextWeekday(p.today, time.Saturday, true), 2)
		}
	case "next":
		switch p.word(i + 1) {
		case "week":
			return day(nextWeekday(p.today, time.Monday, false), 2)
		case "weekend":
			return day(nextWeekday(p.today, time.Saturday, true).addDays(7), 2)
		case "month":
			c := p.today.addMonths(1)
			c.d = 1
			return day(c, 2)
		case "year":
			return day(civil{p.today.y + 1, time.January, 1}, 2)
		}
	case "end", "eow", "eom":
		j, what := i+1, ""
		switch w {
		case "eow":
			what, j = "week", i
		case "eom":
			what, j = "month", i
		default:
			if p.word(j) != "of" {
				return match{}, false
			}
			j++
			if p.word(j) == "the" || p.word(j) == "this" {
				j++
			}
			what = p.word(j)
		}
		switch what {
		case "week":
			// The working week ends on Friday; from Saturday on, the
			// next one.
			return day(nextWeekday(p.today, time.Friday, true), j+1-i)
		case "month":
			c := p.today
			c.d = daysIn(c.y, c.m)
			return day(c, j+1-i)
		case "year":
			return day(civil{p.today.y, time.December, 31}, j+1-i)
		}
	}
	return match{}, false
}

// weekdayPhrase reads "monday", "on Monday", "next monday", "this fri",
// "by friday", with an optional part of the day ("friday evening"). Every
// form is the first such day after today; "this friday" may be today. A
// day name alone is weak.
func (p *parser) weekdayPhrase(i int) (match, bool) {
	j := i
	lead := p.word(i)
	switch lead {
	case "on", "by", "next", "this", "coming":
		j++
		if p.word(j) == "coming" {
			j++
		}
	default:
		lead = ""
	}
	d, abbreviated, plural, ok := weekday(p.word(j))
	if !ok || plural || abbreviated && lead == "" {
		return match{}, false
	}
	c := nextWeekday(p.today, d, lead == "this")
	m := match{n: j + 1 - i, field: FieldDueAt, date: &c, weak: lead == ""}
	if k, ok := periodClocks[p.word(j+1)]; ok {
		m.clock = &k
		m.n++
		m.weak = false
	}
	return m, true
}

// inCount reads "in 2 hours", "in 3 days", "in a week", "in half an hour",
// "in 30min". Minutes and hours are an exact instant; days and longer a
// date (the time of day is then read separately: "in 3 days at 9").
func (p *parser) inCount(i int) (match, bool) {
	if p.word(i) != "in" {
		return match{}, false
	}
	if p.word(i+1) == "half" && (p.word(i+2) == "an" || p.word(i+2) == "a") && p.word(i+3) == "hour" {
		t := p.now.Add(30 * time.Minute)
		return match{n: 4, field: FieldDueAt, at: &t}, true
	}
	if p.word(i+1) == "the" {
		if k, ok := periodClocks[p.word(i+2)]; ok {
			return match{n: 3, field: FieldDueAt, clock: &k}, true
		}
	}
	n, u, big, n2 := 0, unitNone, false, 0
	if c, b, ok := count(p.word(i + 1)); ok {
		if un, ok := unitNames[p.word(i+2)]; ok && len(p.word(i+2)) > 1 {
			n, u, big, n2 = c, un, b, 3
		}
	}
	if n2 == 0 {
		if c, un, b, ok := countUnit(p.word(i + 1)); ok {
			n, u, big, n2 = c, un, b, 2
		}
	}
	if n2 == 0 {
		return match{}, false
	}
	m := match{n: n2, field: FieldDueAt}
	if big {
		m.bad = "the number is too large"
		return m, true
	}
	switch u {
	case unitMinute, unitHour:
		t := p.now.Add(time.Duration(n) * u.duration())
		m.at = &t
	case unitDay:
		c := p.today.addDays(n)
		m.date = &c
	case unitWeek:
		c := p.today.addDays(7 * n)
		m.date = &c
	case unitMonth:
		c := p.today.addMonths(n)
		m.date = &c
	case unitYear:
		c := p.today.addMonths(12 * n)
		m.date = &c
	}
	if m.date != nil && !m.date.valid() {
		m.date, m.bad = nil, "the date is out of range"
	}
	return m, true
}

// monthDate reads "Dec 24", "December 24th, 2027", "24 Dec", "24th of
// December", "the 24th of December", with an optional "on"/"by" before.
// Without a year it is the next such date (today included). "on the 31st
// of Febtember" is read as a date that cannot be.
func (p *parser) monthDate(i int) (match, bool) {
	j := i
	lead := p.word(j) == "on" || p.word(j) == "by"
	if lead {
		j++
	}
	if p.word(j) == "the" {
		j++
	}
	var (
		mo  time.Month
		d   int
		end int
	)
	if m, ok := month(p.word(j)); ok {
		// Month first: "Dec 24", "December 24th".
		day, ok := dayNumber(p.word(j + 1))
		if !ok {
			return match{}, false
		}
		mo, d, end = m, day, j+2
	} else if day, ok := dayNumber(p.word(j)); ok {
		k := j + 1
		of := p.word(k) == "of"
		if of {
			k++
		}
		m, ok := month(p.word(k))
		if !ok {
			// "on the 31st of Febtember": a day of a month we
			// cannot name.
			if of && lead && isWord(p.word(k)) && len(p.word(k)) >= 3 {
				if _, isOrd := ordinal(p.word(j), false); isOrd {
					return match{n: k + 1 - i, field: FieldDueAt, bad: "no such month"}, true
				}
			}
			return match{}, false
		}
		mo, d, end = m, day, k+1
	} else {
		return match{}, false
	}
	m := match{field: FieldDueAt}
	y, hasYear := year(p.word(end))
	if hasYear {
		end++
	}
	m.n = end - i
	if d < 1 || d > 31 || !(civil{2000, mo, d}).valid() { // 2000: a leap year
		m.bad = "no such date"
		return m, true
	}
	var c civil
	if hasYear {
		c = civil{y, mo, d}
		if !c.valid() {
			m.bad = "no such date"
			return m, true
		}
	} else {
		var ok bool
		if c, ok = nextDate(p.today, mo, d); !ok {
			m.bad = "no such date"
			return m, true
		}
	}
	m.date = &c
	return m, true
}

// numericDate reads 2026-12-24, 24/12, 24/12/2026, 24.12.2026. Slashes
// are day/month (12/24 is read month/day, since no month 24 exists).
// Without a year and without "on"/"by"/"due" before it, it is weak ("add
// 1/2 cup sugar" keeps its 1/2).
func (p *parser) numericDate(i int) (match, bool) {
	j := i
	lead := p.word(j) == "on" || p.word(j) == "by"
	if lead {
		j++
	}
	w := p.word(j)
	m := match{n: j + 1 - i, field: FieldDueAt}
	if len(w) == 10 && w[4] == '-' && w[7] == '-' && allDigits(w[:4]) && allDigits(w[5:7]) && allDigits(w[8:]) {
		t, err := time.Parse(time.DateOnly, w)
		if err != nil {
			m.bad = "no such date"
			return m, true
		}
		c := civilOf(t)
		m.date = &c
		return m, true
	}
	sep := "/"
	if strings.Count(w, ".") == 2 && !strings.Contains(w, "/") {
		sep = "." // only with a year: 1.5 is a number
	}
	parts := strings.Split(w, sep)
	if len(parts) < 2 || len(parts) > 3 || sep == "." && len(parts) != 3 {
		return match{}, false
	}
	for k, s := range parts {
		if !allDigits(s) || len(s) > 2 && !(k == 2 && len(s) == 4) {
			return match{}, false
		}
	}
	a, b := atoi(parts[0]), atoi(parts[1])
	if a <= 12 && b > 12 && b <= 31 {
		a, b = b, a // 12/24: month/day
	}
	// 24/12 cannot be a fraction people write; 1/2 can.
	m.weak = !lead && len(parts) == 2 && a <= 12
	if len(parts) == 3 {
		y := atoi(parts[2])
		if len(parts[2]) == 2 {
			y += 2000
		}
		c := civil{y, time.Month(b), a}
		if !c.valid() {
			m.bad = "no such date"
			return m, true
		}
		m.date = &c
		return m, true
	}
	if b < 1 || b > 12 || a < 1 || !(civil{2000, time.Month(b), a}).valid() {
		m.bad = "no such date"
		return m, true
	}
	c, ok := nextDate(p.today, time.Month(b), a)
	if !ok {
		m.bad = "no such date"
		return m, true
	}
	m.date = &c
	return m, true
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// ordinalDate reads "on the 24th", "by the 1st": the next such day of a
// month. It is weak ("meet on the 3rd floor" is not a date).
func (p *parser) ordinalDate(i int) (match, bool) {
	if w := p.word(i); w != "on" && w != "by" {
		return match{}, false
	}
	if p.word(i+1) != "the" {
		return match{}, false
	}
	d, ok := ordinal(p.word(i+2), false)
	if !ok {
		return match{}, false
	}
	m := match{n: 3, field: FieldDueAt, weak: true}
	c, ok := nextMonthDay(p.today, d)
	if !ok {
		m.bad = "no month has that day"
		return m, true
	}
	m.date = &c
	return m, true
}

// timePhrase reads "at 9", "at 9:30", "at 5pm", "5pm", "9 am", "21:00",
// "noon", "at midnight". A time-shaped word that is no time ("at 25:00",
// "13pm") is read as bad.
func (p *parser) timePhrase(i int) (match, bool) {
	j := i
	at := p.word(j) == "at" || p.word(j) == "@"
	if at {
		j++
	}
	w := p.word(j)
	m := match{field: FieldDueAt}
	if k, looks, ok := timeWord(w, at); looks {
		m.n = j + 1 - i
		if k.plain && strings.ContainsAny(w, ":.") {
			// "9:45 am"
			switch suffix := p.word(j + 1); suffix {
			case "am", "pm", "a.m", "p.m":
				m.n++
				if k.h < 1 || k.h > 12 {
					ok = false
					break
				}
				k.h, k.plain = k.h%12, false
				if suffix[0] == 'p' {
					k.h += 12
				}
			}
		}
		if !ok {
			m.bad = "no such time of day"
			return m, true
		}
		m.clock = &k
		return m, true
	}
	if h, looks, ok := plainHour(w); looks {
		suffix := p.word(j + 1)
		switch suffix {
		case "am", "pm", "a.m", "p.m":
			m.n = j + 2 - i
			if h < 1 || h > 12 {
				m.bad = "no such time of day"
				return m, true
			}
			k := clock{h: h % 12}
			if suffix[0] == 'p' {
				k.h += 12
			}
			m.clock = &k
			return m, true
		}
		if !at {
			return match{}, false
		}
		m.n = j + 1 - i
		if !ok {
			m.bad = "no such time of day"
			return m, true
		}
		if p.word(j+1) == "o'clock" || p.word(j+1) == "oclock" {
			m.n++
		}
		m.clock = &clock{h: h, plain: true}
		return m, true
	}
	if at {
		if k, ok := periodClocks[w]; ok && (w == "night" || w == "noon" || w == "midnight" || w == "midday") {
			m.n, m.clock = 2, &k
			return m, true
		}
	}
	return match{}, false
}

// every reads a recurrence: "every day", "every 3 days", "every other
// week", "every weekday", "every monday and thursday", "every 2 weeks on
// Friday", "every month on the 1st", "every 15th", "every year on Dec 24",
// "every Dec 24", with an optional end: "until Dec 24", "for 10 times".
func (p *parser) every(i int) (match, bool) {
	if p.word(i) != "every" {
		return match{}, false
	}
	j := i + 1
	m := match{field: FieldRecurrence}
	r := rule{interval: 1}
	if p.word(j) == "other" {
		r.interval = 2
		j++
	} else if n, big, ok := count(p.word(j)); ok && p.word(j) != "a" && p.word(j) != "an" {
		if _, isUnit := unitNames[p.word(j+1)]; isUnit {
			switch {
			case big || n > 999:
				m.n, m.bad = j+2-i, "the interval is too large"
				return m, true
			case n < 1:
				m.n, m.bad = j+2-i, "the interval must be at least 1"
				return m, true
			}
			r.interval = n
			j++
		}
	}
	w := p.word(j)
	u := unitNames[w]
	if len(w) == 1 {
		u = unitNone // "every 2 d": too terse to be sure
	}
	switch {
	case u == unitMinute || u == unitHour:
		m.n, m.bad = j+1-i, "rules repeat daily, weekly, monthly or yearly"
		return m, true
	case u == unitDay:
		r.freq = freqDaily
		j++
	case u == unitWeek:
		r.freq = freqWeekly
		j++
		if p.word(j) == "on" {
			days, n := p.dayList(j + 1)
			if n == 0 {
				m.n, m.bad = j+2-i, "no such day of the week"
				return m, true
			}
			r.byDay = days
			j += 1 + n
		}
	case u == unitMonth:
		r.freq = freqMonthly
		j++
		if p.word(j) == "on" {
			k := j + 1
			if p.word(k) == "the" {
				k++
			}
			d, n := p.monthDay(k)
			if n == 0 {
				m.n, m.bad = k+1-i, "no such day of the month"
				return m, true
			}
			r.byMonthDay = d
			j = k + n
		}
	case u == unitYear:
		r.freq = freqYearly
		j++
		if p.word(j) == "on" {
			mo, d, n, bad := p.dayOfYear(j + 1)
			if n == 0 || bad {
				m.n, m.bad = j+1+max(n, 1)-i, "no such date"
				return m, true
			}
			r.byMonth, r.byMonthDay = mo, d
			j += 1 + n
		}
	case r.interval == 1 && (w == "weekday" || w == "weekdays" || w == "workday" || w == "workdays"):
		r.freq = freqWeekly
		r.byDay = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
		j++
	case r.interval == 1 && (w == "weekend" || w == "weekends"):
		r.freq = freqWeekly
		r.byDay = []time.Weekday{time.Saturday, time.Sunday}
		j++
	default:
		if days, n := p.dayList(j); n > 0 {
			r.freq, r.byDay = freqWeekly, days
			j += n
			break
		}
		if r.interval != 1 {
			return match{}, false
		}
		if d, ok := ordinal(w, false); ok {
			// "every 1st (of the month)"
			if d > 31 {
				m.n, m.bad = j+1-i, "no such day of the month"
				return m, true
			}
			r.freq, r.byMonthDay = freqMonthly, d
			j++
			if p.word(j) == "of" && p.word(j+1) == "the" && p.word(j+2) == "month" {
				j += 3
			}
			break
		}
		if mo, d, n, bad := p.dayOfYear(j); n > 0 {
			if bad {
				m.n, m.bad = j+n-i, "no such date"
				return m, true
			}
			r.freq, r.byMonth, r.byMonthDay = freqYearly, mo, d
			j += n
			break
		}
		return match{}, false
	}
	// An end right after the rule; one further on is read by ruleEnd.
	if end, ok := p.ruleEnd(j); ok {
		if end.bad != "" {
			m.n, m.bad = j+end.n-i, end.bad
			return m, true
		}
		r.count, r.until = end.rule.count, end.rule.until
		j += end.n
	}
	m.n, m.rule = j-i, &r
	return m, true
}

// ruleEnd reads the end of a rule: "until Dec 24", "for 10 times", "10
// times". Apart from "every ..." it is a phrase of its own (ending), which
// the parse joins to the rule ("every day at 7am until Dec 24").
func (p *parser) ruleEnd(j int) (match, bool) {
	m := match{field: FieldRecurrence, ending: true}
	k := j
	if p.word(k) == "for" {
		k++
	}
	if n, big, ok := count(p.word(k)); ok && (p.word(k+1) == "times" || p.word(k+1) == "occurrences") {
		m.n = k + 2 - j
		if big || n < 1 || n > 999 {
			m.bad = "the number of times must be 1 to 999"
			return m, true
		}
		m.rule = &rule{count: n}
		return m, true
	}
	if p.word(j) != "until" {
		return match{}, false
	}
	u, ok := p.when(j + 1)
	if !ok || u.bad != "" || u.date == nil || u.clock != nil || u.at != nil {
		m.n, m.bad = 1+max(u.n, 1), "cannot read the end date"
		return m, true
	}
	m.n, m.rule = 1+u.n, &rule{until: u.date}
	return m, true
}

// dayList reads "monday", "mon", "mondays", "monday and thursday", "mon,
// wed, fri", "mon/wed/fri": the days in Monday..Sunday order, and how many
// tokens it read.
func (p *parser) dayList(j int) ([]time.Weekday, int) {
	seen := map[time.Weekday]bool{}
	n := 0
	for {
		w := p.word(j + n)
		ok := w != ""
		var found []time.Weekday
		for part := range strings.SplitSeq(w, "/") {
			d, _, _, isDay := weekday(part)
			if !isDay {
				ok = false
				break
			}
			found = append(found, d)
		}
		if !ok {
			break
		}
		for _, d := range found {
			seen[d] = true
		}
		n++
		// "and" or "&" joins another day; a comma stays on the word.
		if next := p.word(j + n); next == "and" || next == "&" {
			if _, _, _, isDay := weekday(p.word(j + n + 1)); isDay {
				n++
			}
		}
	}
	var days []time.Weekday
	for _, d := range []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday} {
		if seen[d] {
			days = append(days, d)
		}
	}
	return days, n
}

// monthDay reads the day of "on the 1st", "on the 15th", "on the last
// day" (-1) for a monthly rule.
func (p *parser) monthDay(j int) (int, int) {
	if p.word(j) == "last" {
		if p.word(j+1) == "day" {
			return -1, 2
		}
		return -1, 1
	}
	if p.word(j) == "day" {
		if d, ok := dayNumber(p.word(j + 1)); ok && d >= 1 && d <= 31 {
			return d, 2
		}
		return 0, 0
	}
	if d, ok := dayNumber(p.word(j)); ok && d >= 1 && d <= 31 {
		return d, 1
	}
	return 0, 0
}

// dayOfYear reads "Dec 24", "December 24th", "24 December", "24th of
// December" for a yearly rule; bad reports a day the month never has.
func (p *parser) dayOfYear(j int) (time.Month, int, int, bool) {
	if p.word(j) == "the" {
		if mo, d, n, bad := p.dayOfYear(j + 1); n > 0 {
			return mo, d, n + 1, bad
		}
		return 0, 0, 0, false
	}
	if mo, ok := month(p.word(j)); ok {
		if d, ok := dayNumber(p.word(j + 1)); ok {
			return mo, d, 2, d < 1 || !(civil{2000, mo, d}).valid()
		}
		return 0, 0, 0, false
	}
	d, ok := dayNumber(p.word(j))
	if !ok {
		return 0, 0, 0, false
	}
	k := j + 1
	if p.word(k) == "of" {
		k++
	}
	if mo, ok := month(p.word(k)); ok {
		return mo, d, k + 1 - j, d < 1 || !(civil{2000, mo, d}).valid()
	}
	return 0, 0, 0, false
}
