package quickadd_test

import (
	"fmt"
	"time"

	"tasksync/tasks/quickadd"
)

func ExampleParse() {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Date(2026, time.December, 2, 10, 30, 0, 0, berlin)

	r := quickadd.Parse("Pay rent every month on the 1st !high #home at 25:00", now, berlin)
	fmt.Println(r.Title)
	fmt.Println(r.DueAt.Format("Mon 2 Jan 2006 15:04 MST"), r.AllDay)
	fmt.Println(r.Recurrence, r.Priority, r.Tags)
	for _, f := range r.Unparsed {
		fmt.Printf("not read: %q (%s)\n", f.Text, f.Reason)
	}
	// Output:
	// Pay rent
	// Fri 1 Jan 2027 00:00 CET true
	// FREQ=MONTHLY;BYMONTHDAY=1 high [home]
	// not read: "at 25:00" (no such time of day)
}
