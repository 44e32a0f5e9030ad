package tasks

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"tasksync"
	"tasksync/internal/utf8json"
)

var listParams = []string{"status", "priority", "tag", "q", "due_before", "due_after", "sort", "order", "limit", "cursor"}

// listValues writes q back as query parameters.
func listValues(q ListQuery) url.Values {
	v := url.Values{"status": {string(q.Status)}, "sort": {q.Sort}, "limit": {strconv.Itoa(q.Limit)}}
	if q.Desc {
		v.Set("order", "desc")
	}
	var ps []string
	for _, p := range q.Priorities {
		ps = append(ps, string(p))
	}
	if len(ps) > 0 {
		v.Set("priority", strings.Join(ps, ","))
	}
	for _, tag := range q.Tags {
		v.Add("tag", tag)
	}
	if q.Search != "" {
		v.Set("q", q.Search)
	}
	if q.DueBefore != nil {
		v.Set("due_before", q.DueBefore.Format(time.RFC3339Nano))
	}
	if q.DueAfter != nil {
		v.Set("due_after", q.DueAfter.Format(time.RFC3339Nano))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	return v
}

// sameListQuery compares list queries, times by instant.
func sameListQuery(a, b ListQuery) bool {
	if !sameTime(a.DueBefore, b.DueBefore) || !sameTime(a.DueAfter, b.DueAfter) {
		return false
	}
	a.DueBefore, a.DueAfter, b.DueBefore, b.DueAfter = nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

func checkTime(t *testing.T, name string, tm *time.Time) {
	t.Helper()
	if tm == nil {
		return
	}
	if tm.Location() != time.UTC || tm.Year() < 1 || tm.Year() > 9999 || tm.Nanosecond()%1000 != 0 {
		t.Errorf("%s = %v: want UTC, years 1..9999, whole microseconds", name, tm)
	}
}

func FuzzParseListQuery(f *testing.F) {
	for _, seed := range []string{
		"",
		"status=pending&priority=high,low&tag=work&tag=home&q=milk&due_before=2026-12-01&due_after=2026-01-01T00:00:00Z&sort=due_date&order=desc&limit=20",
		"status=ALL&sort=PRIORITY&order=DESC&limit=500",
		"status=completed&sort=title&limit=1",
		"sort=title&cursor=" + cursor{Sort: "title", Key: "buy milk", ID: 42}.encode(),
		"sort=due_date&order=desc&cursor=" + cursor{Sort: "due_date", Desc: true, Key: "-infinity", ID: 7}.encode(),
		"cursor=" + cursor{Sort: "created", Key: "2026-11-25 19:16:00.123456+00", ID: 1}.encode(),
		"cursor=" + cursor{Sort: "priority", Key: "3", ID: 1}.encode(),
		"limit=0", "limit=501", "limit=-1", "limit=1e3", "limit=+5",
		"q=%25_%5C", "q=+spaces+", "priority=,,,", "priority=high&priority=urgent",
		"tag=%FF", "q=%00", "tag=a%00", "q=%C3%28",
		"due_before=0001-01-01T00:30:00%2B01:00", "due_after=9999-12-31T23:59:59.9999999Z", "due_before=2026-02-30",
		"cursor=%%%", "cursor=e30", "a=%zz&b", "tag=" + strings.Repeat("x", 51), strings.Repeat("tag=t&", 21),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw) // keeps what parsed before a bad escape
		q, err := ParseListQuery(v)
		if err != nil {
			var e *tasksync.Error
			if !errors.As(err, &e) || e.Code != tasksync.CodeBadRequest || len(e.Fields) == 0 {
				t.Fatalf("error %#v: want bad_request with fields", err)
			}
			for name, msg := range e.Fields {
				if !slices.Contains(listParams, name) || msg == "" {
					t.Errorf("field %q: %q", name, msg)
				}
			}
			return
		}
		if q.Limit < 1 || q.Limit > MaxLimit {
			t.Errorf("Limit %d", q.Limit)
		}
		if _, ok := sortKeys[q.Sort]; !ok {
			t.Errorf("Sort %q", q.Sort)
		}
		if !slices.Contains([]Status{StatusAll, StatusPending, StatusCompleted}, q.Status) {
			t.Errorf("Status %q", q.Status)
		}
		for _, p := range q.Priorities {
			if !slices.Contains([]Priority{PriorityLow, PriorityMedium, PriorityHigh}, p) {
				t.Errorf("priority %q", p)
			}
		}
		if len(q.Tags) > MaxTags {
			t.Errorf("%d tags", len(q.Tags))
		}
		for _, tag := range q.Tags {
			if tag == "" || tag != strings.TrimSpace(tag) || utf8.RuneCountInString(tag) > MaxTag || !storableText(tag) {
				t.Errorf("tag %q", tag)
			}
		}
		if q.Search != strings.TrimSpace(q.Search) || utf8.RuneCountInString(q.Search) > MaxQuery || !storableText(q.Search) {
			t.Errorf("Search %q", q.Search)
		}
		checkTime(t, "DueBefore", q.DueBefore)
		checkTime(t, "DueAfter", q.DueAfter)
		if q.Cursor != "" {
			c, err := decodeCursor(q.Cursor)
			if err != nil || c.Sort != q.Sort || c.Desc != q.Desc {
				t.Errorf("accepted cursor %q: %+v, %v", q.Cursor, c, err)
			}
		}

		// Written back as parameters, the query parses to itself.
		again, err := ParseListQuery(listValues(q))
		if err != nil {
			t.Fatalf("re-parse of %+v: %v", q, err)
		}
		if !sameListQuery(again, q) {
			t.Errorf("re-parse:\n got %+v\nwant %+v", again, q)
		}

		// A cursor this server makes for the query decodes to itself and
		// is accepted with the same sort and order.
		c := cursor{Sort: q.Sort, Desc: q.Desc, Key: q.Search, ID: int64(len(raw)) + 1}
		back, err := decodeCursor(c.encode())
		if err != nil || back != c {
			t.Fatalf("cursor round trip: %+v -> %+v, %v", c, back, err)
		}
		v2 := listValues(q)
		v2.Set("cursor", c.encode())
		if withCursor, err := ParseListQuery(v2); err != nil || withCursor.Cursor != c.encode() {
			t.Errorf("own cursor refused: %v", err)
		}
	})
}

var editableKeys = []string{"title", "description", "completed", "priority", "tags", "due_date", "due_at", "remind_at", "recurrence", "tz"}

func FuzzDecodeFields(f *testing.F) {
	for _, seed := range []string{
		`{"title":"Buy milk"}`,
		`{"title":"  Buy milk  ","description":"2 litres","priority":"HIGH","tags":[" home ","Home","errands"],"due_date":"2026-12-01T17:00:00+02:00"}`,
		`{"title":"t","due_date":null,"description":null,"tags":null}`,
		`{"completed":true}`, `{"completed":"yes"}`, `{"completed":null}`,
		`{"title":5,"description":false,"priority":3,"tags":"a","due_date":1}`,
		`{"title":"","tags":[""]}`, `{"title":" \t "}`,
		`{"title":"a\u0000b"}`, `{"tags":["x\u0000"]}`, `{"description":"\ud800"}`,
		`{"title":"` + strings.Repeat("é", 200) + `"}`, `{"title":"` + strings.Repeat("é", 201) + `"}`,
		`{"tags":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t","u"]}`,
		`{"due_date":"2026-12-01"}`, `{"due_date":"0000-01-01"}`, `{"due_date":"9999-12-31T23:30:00-01:00"}`, `{"due_date":"2026-12-01T17:00:00.1234567Z"}`,
		`{"priority":" Low "}`, `{"priority":"urgent"}`, `{"unknown":{"nested":[1,2,3]}}`, `{}`,
		"{\"title\":\"bad\xff\xfe\"}", "{\"tags\":[\"a\",\"\xc3\"]}", `{"title":"\ud800"}`, `{"title":"\ud83d\ude00"}`,
		`{"description":"\udc00\ud800"}`, `{"tags":["\ud800"],"title":"\\ud800"}`,
		`{"due_at":"2026-12-01T09:00:00Z","due_date":"2026-12-01T10:00:00+01:00"}`, `{"due_at":"2026-12-01T09:00:00Z","due_date":"2026-12-02"}`,
		`{"due_at":null,"due_date":"2026-12-02"}`, `{"remind_at":"2026-12-01T08:50:00Z","remind_at2":1}`, `{"remind_at":5}`,
		`{"title":"t","due_at":"2026-11-30T09:00:00+01:00","recurrence":"RRULE:freq=weekly;byday=MO","tz":"Europe/Berlin"}`,
		`{"recurrence":"FREQ=HOURLY"}`, `{"recurrence":"FREQ=DAILY;COUNT=0"}`, `{"recurrence":"FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z"}`,
		`{"recurrence":"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}`, `{"recurrence":"DTSTART:20260101T000000Z\nFREQ=DAILY"}`, `{"recurrence":""}`,
		`{"recurrence":null,"due_at":null}`, `{"tz":"Mars/Olympus"}`, `{"tz":"Local"}`, `{"tz":""}`, `{"tz":"../../etc/passwd"}`, `{"tz":"America/New_York"}`,
	} {
		f.Add([]byte(seed))
	}
	due := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	bases := []Task{
		{Priority: PriorityMedium, Tags: []string{}}, // what Create starts from
		{Title: "existing", Description: "d", Priority: PriorityHigh, Tags: []string{"a"}, DueAt: &due, Completed: true, Version: 3},
		{Title: "weekly", Priority: PriorityLow, Tags: []string{}, DueAt: &due, RemindAt: &due, Recurrence: ptr("FREQ=WEEKLY"), TZ: ptr("Europe/Berlin"), SeriesID: ptr(int64(7))},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var raw map[string]json.RawMessage
		if json.Unmarshal(data, &raw) != nil || raw == nil {
			return
		}
		fields, err := DecodeFields(raw)
		if err != nil {
			var e *tasksync.Error
			if !errors.As(err, &e) || e.Code != tasksync.CodeInvalid || len(e.Fields) == 0 {
				t.Fatalf("DecodeFields error %#v: want invalid with fields", err)
			}
			for name := range e.Fields {
				if !slices.Contains(editableKeys, name) && !strings.HasPrefix(name, "tags[") {
					t.Errorf("unexpected field %q", name)
				}
			}
			return
		}
		// Text that decoding would have altered is never accepted.
		for _, k := range []string{"title", "description", "tags"} {
			if v, ok := raw[k]; ok && !utf8json.Valid(v) {
				t.Fatalf("%s %s accepted", k, v)
			}
		}
		for _, base := range bases {
			task := base
			fields.applyTo(&task)
			err := check(task)
			if err != nil {
				var e *tasksync.Error
				if !errors.As(err, &e) || e.Code != tasksync.CodeInvalid || len(e.Fields) == 0 {
					t.Fatalf("check error %#v: want invalid with fields", err)
				}
				for name := range e.Fields {
					if !slices.Contains([]string{"title", "description", "priority", "tags", "recurrence", "tz"}, name) && !strings.HasPrefix(name, "tags[") {
						t.Errorf("check: unexpected field %q", name)
					}
				}
				continue
			}
			// A task that passes check satisfies the table's constraints.
			if n := utf8.RuneCountInString(task.Title); n < 1 || n > MaxTitle || task.Title != strings.TrimSpace(task.Title) {
				t.Errorf("title %q passed check", task.Title)
			}
			if utf8.RuneCountInString(task.Description) > MaxDescription {
				t.Errorf("description of %d characters passed check", utf8.RuneCountInString(task.Description))
			}
			if !slices.Contains([]Priority{PriorityLow, PriorityMedium, PriorityHigh}, task.Priority) {
				t.Errorf("priority %q passed check", task.Priority)
			}
			if len(task.Tags) > MaxTags {
				t.Errorf("%d tags passed check", len(task.Tags))
			}
			for _, tag := range task.Tags {
				if tag == "" || utf8.RuneCountInString(tag) > MaxTag || !storableText(tag) {
					t.Errorf("tag %q passed check", tag)
				}
			}
			if !storableText(task.Title) || !storableText(task.Description) {
				t.Errorf("text Postgres cannot store passed check: %q %q", task.Title, task.Description)
			}
			checkTime(t, "due_date", task.DueAt)
			checkTime(t, "remind_at", task.RemindAt)
			if task.Recurrence != nil {
				if _, err := Rule(task); err != nil {
					t.Errorf("recurrence %q passed check but has no rule: %v", *task.Recurrence, err)
				}
			}
			if _, err := Location(task.TZ); err != nil {
				t.Errorf("tz %v passed check: %v", task.TZ, err)
			}

			// Normalising is idempotent: sending back what the task holds
			// is a no-op (which is what keeps versions from moving).
			back := Fields{Title: &task.Title, Description: &task.Description, Completed: &task.Completed,
				Priority: &task.Priority, Tags: &task.Tags, DueSet: true, DueAt: task.DueAt,
				RemindSet: true, RemindAt: task.RemindAt, RecurrenceSet: true, Recurrence: task.Recurrence, TZSet: true, TZ: task.TZ}
			again := task
			back.applyTo(&again)
			if !sameEditable(task, again) {
				t.Errorf("re-applying the task's own fields changed it:\n%+v\n%+v", task, again)
			}
			// The JSON the API writes reads back to the same fields.
			b, err := json.Marshal(task)
			if err != nil {
				t.Fatal(err)
			}
			var decoded Task
			if err := json.Unmarshal(b, &decoded); err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			if !sameEditable(task, decoded) {
				t.Errorf("JSON round trip changed the task:\n%+v\n%s", task, b)
			}
		}
	})
}

// FuzzHistoryParameters: the limit of a history request and the version
// of a restore either parse to a value in range or are refused with a
// client error naming the field.
func FuzzHistoryParameters(f *testing.F) {
	for _, seed := range []string{"", "1", "500", "501", "0", "-1", "01", "1.5", "1e2", `"1"`, "null", "99999999999", " 7", "[1]"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseHistoryLimit(s); err == nil {
			if n < 1 || n > MaxHistoryLimit {
				t.Errorf("limit %q -> %d", s, n)
			}
		} else if e := tasksync.AsError(err); e.Code != tasksync.CodeBadRequest || e.Fields["limit"] == "" {
			t.Errorf("limit %q: %v", s, err)
		}
		if v, err := DecodeRestoreVersion(json.RawMessage(s)); err == nil {
			if v < 0 || (v == 0 && s != "" && s != "null") {
				t.Errorf("version %q -> %d", s, v)
			}
		} else if e := tasksync.AsError(err); e.Code != tasksync.CodeInvalid || e.Fields["version"] == "" {
			t.Errorf("version %q: %v", s, err)
		}
	})
}
