package tasks

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"

	"tasksync"
	"tasksync/internal/utf8json"
)

// Limits on task fields, enforced by [validate] and by CHECK constraints.
const (
	MaxTitle       = 200
	MaxDescription = 1000
	MaxTags        = 20
	MaxTag         = 50
)

// Limits of the time fields.
const (
	MaxRecurrence = 500
	MaxTZ         = 64
)

// Fields is a set of editable task fields as sent by a client. A nil pointer
// means "not sent"; DueSet with a nil DueAt means "clear the due date", and
// the same for RemindSet, RecurrenceSet and TZSet.
type Fields struct {
	Title       *string
	Description *string
	Completed   *bool
	Priority    *Priority
	Tags        *[]string
	DueAt       *time.Time
	DueSet      bool
	RemindAt    *time.Time
	RemindSet   bool
	// Recurrence is an RRULE without the "RRULE:" prefix (DecodeFields
	// strips it).
	Recurrence    *string
	RecurrenceSet bool
	TZ            *string
	TZSet         bool
}

// DecodeFields reads the editable fields of a task from a JSON object, as
// sent to REST and in socket frames. Unknown keys are ignored; every field
// of the wrong type is reported at once, keyed by its JSON name.
func DecodeFields(raw map[string]json.RawMessage) (Fields, error) {
	var f Fields
	bad := map[string]string{}
	str := func(key string, dst **string, nullOK bool) {
		v, ok := raw[key]
		if !ok {
			return
		}
		if isNull(v) {
			if nullOK {
				empty := ""
				*dst = &empty
			} else {
				bad[key] = "must be a string"
			}
			return
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			bad[key] = "must be a string"
			return
		}
		if !utf8json.Valid(v) {
			bad[key] = notText // before decoding replaced the bad part with U+FFFD
			return
		}
		*dst = &s
	}
	str("title", &f.Title, false)
	str("description", &f.Description, true)
	if v, ok := raw["completed"]; ok {
		var b bool
		if isNull(v) || json.Unmarshal(v, &b) != nil {
			bad["completed"] = "must be true or false"
		} else {
			f.Completed = &b
		}
	}
	if v, ok := raw["priority"]; ok {
		var s string
		if isNull(v) || json.Unmarshal(v, &s) != nil {
			bad["priority"] = "must be one of low, medium, high"
		} else {
			p := Priority(strings.ToLower(strings.TrimSpace(s)))
			f.Priority = &p
		}
	}
	if v, ok := raw["tags"]; ok {
		var tags []string
		if !isNull(v) && json.Unmarshal(v, &tags) != nil {
			bad["tags"] = "must be an array of strings"
		} else if !utf8json.Valid(v) {
			var each []json.RawMessage
			_ = json.Unmarshal(v, &each)
			for i, tag := range each {
				if !utf8json.Valid(tag) {
					bad[fmt.Sprintf("tags[%d]", i)] = notText
				}
			}
		} else {
			if tags == nil {
				tags = []string{}
			}
			f.Tags = &tags
		}
	}
	timeField := func(key string) (t *time.Time, sent bool) {
		v, ok := raw[key]
		if !ok {
			return nil, false
		}
		if isNull(v) {
			return nil, true
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			bad[key] = "must be a string: an RFC 3339 date-time or a YYYY-MM-DD date"
			return nil, true
		}
		parsed, err := ParseTime(s)
		if err != nil {
			bad[key] = err.Error()
			return nil, true
		}
		return &parsed, true
	}
	// due_at and due_date are one field under two names: either will do,
	// both must agree.
	dueDate, dateSent := timeField("due_date")
	dueAt, atSent := timeField("due_at")
	switch {
	case atSent && dateSent && bad["due_at"] == "" && bad["due_date"] == "" && !sameTime(dueAt, dueDate):
		bad["due_at"] = "differs from due_date: they are the same field, send one of them (or both equal)"
	case atSent:
		f.DueAt, f.DueSet = dueAt, true
	case dateSent:
		f.DueAt, f.DueSet = dueDate, true
	}
	f.RemindAt, f.RemindSet = timeField("remind_at")
	textField := func(key string, dst **string) bool {
		v, ok := raw[key]
		if !ok {
			return false
		}
		if isNull(v) {
			return true
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			bad[key] = "must be a string or null"
			return true
		}
		if !utf8json.Valid(v) {
			bad[key] = notText
			return true
		}
		s = strings.TrimSpace(s)
		if s != "" { // "" clears, as null does
			*dst = &s
		}
		return true
	}
	f.RecurrenceSet = textField("recurrence", &f.Recurrence)
	if f.Recurrence != nil {
		rule := *f.Recurrence
		if len(rule) >= len("RRULE:") && strings.EqualFold(rule[:len("RRULE:")], "RRULE:") {
			rule = strings.TrimSpace(rule[len("RRULE:"):])
		}
		rule = strings.ToUpper(rule)
		f.Recurrence = &rule
		if rule == "" {
			f.Recurrence = nil
		}
	}
	f.TZSet = textField("tz", &f.TZ)
	if len(bad) > 0 {
		return Fields{}, tasksync.Invalid(bad)
	}
	return f, nil
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }

// ParseTime accepts an RFC 3339 date-time or a YYYY-MM-DD date (midnight UTC).
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if t, err = time.Parse(time.DateOnly, s); err != nil {
			return time.Time{}, fmt.Errorf("must be an RFC 3339 date-time (2026-12-01T17:00:00Z) or a YYYY-MM-DD date")
		}
	}
	// The year is checked in UTC, the zone the time is stored and written
	// in: an offset can move 0001-01-01 into year 0, which Postgres prints
	// as year 1 BC, and 9999-12-31 into year 10000, which RFC 3339 cannot
	// express.
	t = t.UTC().Truncate(time.Microsecond)
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("must be between years 1 and 9999")
	}
	return t, nil
}

// notText is the message for strings that Postgres cannot store as text,
// or that arrived as invalid UTF-8 or lone surrogate escapes in JSON.
const notText = "must be UTF-8 text without NUL characters"

// storableText reports whether s fits a Postgres text value: valid UTF-8
// without NUL (JSON may carry "\u0000"; query strings may carry any byte).
func storableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// applyTo writes the sent fields into t, normalising them (trimmed title and
// tags, duplicate tags dropped).
func (f Fields) applyTo(t *Task) {
	if f.Title != nil {
		t.Title = strings.TrimSpace(*f.Title)
	}
	if f.Description != nil {
		t.Description = strings.TrimSpace(*f.Description)
	}
	if f.Completed != nil {
		t.Completed = *f.Completed
	}
	if f.Priority != nil {
		t.Priority = *f.Priority
	}
	if f.Tags != nil {
		t.Tags = normaliseTags(*f.Tags)
	}
	if f.DueSet {
		t.DueAt = f.DueAt
	}
	if f.RemindSet {
		t.RemindAt = f.RemindAt
	}
	if f.RecurrenceSet {
		t.Recurrence = f.Recurrence
	}
	if f.TZSet {
		t.TZ = f.TZ
	}
}

// normaliseTags trims tags and drops repeats (case-insensitively, keeping
// the first spelling). Empty tags are kept so that validation names them.
func normaliseTags(in []string) []string {
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, tag := range in {
		tag = strings.TrimSpace(tag)
		k := strings.ToLower(tag)
		if tag != "" && seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, tag)
	}
	return out
}

// editable is the validated view of a task's client-editable fields. Its
// rules are made from the limits above in newValidator, not written in
// struct tags, so that each limit is stated once.
type editable struct {
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Priority    Priority `json:"priority"`
	Tags        []string `json:"tags"`
}

var validate = newValidator()

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		return name
	})
	v.RegisterStructValidationMapRules(map[string]string{
		"Title":       fmt.Sprintf("required,max=%d", MaxTitle),
		"Description": fmt.Sprintf("max=%d", MaxDescription),
		"Priority":    "oneof=" + strings.Join([]string{string(PriorityLow), string(PriorityMedium), string(PriorityHigh)}, " "),
		"Tags":        fmt.Sprintf("max=%d,dive,required,max=%d", MaxTags, MaxTag),
	}, editable{})
	return v
}

// check validates the editable fields of t and returns a CodeInvalid error
// with one message per bad field.
func check(t Task) error {
	fields := map[string]string{}
	err := validate.Struct(editable{Title: t.Title, Description: t.Description, Priority: t.Priority, Tags: t.Tags})
	if err != nil {
		verrs, ok := err.(validator.ValidationErrors)
		if !ok {
			return fmt.Errorf("validate task: %w", err)
		}
		for _, fe := range verrs {
			// Namespace is "editable.tags[3]": drop the struct name.
			_, key, _ := strings.Cut(fe.Namespace(), ".")
			fields[key] = fieldMessage(fe)
		}
	}
	// Text Postgres would refuse is the client's mistake, not a failed INSERT.
	text := func(key, s string) {
		if _, ok := fields[key]; !ok && !storableText(s) {
			fields[key] = notText
		}
	}
	text("title", t.Title)
	text("description", t.Description)
	for i, tag := range t.Tags {
		text(fmt.Sprintf("tags[%d]", i), tag)
	}
	checkTimeFields(t, fields)
	if len(fields) == 0 {
		return nil
	}
	return tasksync.Invalid(fields)
}

func fieldMessage(fe validator.FieldError) string {
	isList := fe.Kind() == reflect.Slice
	switch fe.Tag() {
	case "required":
		if strings.HasPrefix(fe.Field(), "tags[") {
			return "must not be empty"
		}
		return "is required and must not be blank"
	case "max":
		if isList {
			return fmt.Sprintf("must have at most %s items", fe.Param())
		}
		return fmt.Sprintf("must be at most %s characters", fe.Param())
	case "oneof":
		return "must be one of " + strings.Join(strings.Fields(fe.Param()), ", ")
	default:
		return "is invalid (" + fe.Tag() + ")"
	}
}

// sameEditable reports whether a and b have the same stored fields (the
// ones the no-op trigger tasks_before_update compares).
func sameEditable(a, b Task) bool {
	return a.Title == b.Title && a.Description == b.Description && a.Completed == b.Completed &&
		a.Priority == b.Priority && slices.Equal(a.Tags, b.Tags) && sameTime(a.DueAt, b.DueAt) &&
		sameTime(a.RemindAt, b.RemindAt) && samePtr(a.Recurrence, b.Recurrence) && samePtr(a.TZ, b.TZ) &&
		samePtr(a.SeriesID, b.SeriesID)
}

func samePtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
