package main

import "testing"

// The --task baseline finds its own user's changes among the change-log
// notifications, in both forms, and nothing else.
func TestTaskEventSeq(t *testing.T) {
	for _, c := range []struct {
		payload string
		seq     int64
		ok      bool
	}{
		{`e42:11:lg-notify-a:created:7:1764700000000000:{"id":7}`, 42, true},
		{`e42:11:lg-notify-b:created:7:1764700000000000:{"id":7}`, 0, false}, // another user
		{`e42:12:lg-notify-ab:created:7:1:{}`, 0, false},                     // a longer id that starts with ours
		{`e42:11:lg-notify-a`, 0, false},                                     // cut short
		{`e42:99:lg-notify-a:x`, 0, false},                                   // length past the end
		{`e42:-1:lg-notify-a:x`, 0, false},
		{`42:lg-notify-a`, 42, true}, // the pointer form
		{`42:lg-notify-ab`, 0, false},
		{`x:lg-notify-a`, 0, false},
		{``, 0, false},
	} {
		seq, ok := taskEventSeq(c.payload, "lg-notify-a")
		if ok != c.ok || (ok && seq != c.seq) {
			t.Errorf("taskEventSeq(%q) = %d, %v; want %d, %v", c.payload, seq, ok, c.seq, c.ok)
		}
	}
}
