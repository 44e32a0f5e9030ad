package tasks_test

import (
	"fmt"
	"net/url"

	"tasksync/tasks"
)

// ExampleParseListQuery reads the list parameters of a REST query string.
// Every bad parameter is reported at once; the error's Fields say which.
func ExampleParseListQuery() {
	v, err := url.ParseQuery("status=pending&priority=high,low&tag=work&tag=home&q=milk&due_before=2026-12-01&sort=due_date&order=desc&limit=20")
	if err != nil {
		panic(err)
	}
	q, err := tasks.ParseListQuery(v)
	if err != nil {
		panic(err)
	}
	fmt.Println("status:", q.Status)
	fmt.Println("priorities:", q.Priorities)
	fmt.Println("tags:", q.Tags)
	fmt.Println("search:", q.Search)
	fmt.Println("due before:", q.DueBefore.Format("2006-01-02T15:04:05Z07:00"))
	fmt.Println("due after set:", q.DueAfter != nil)
	fmt.Println("sort:", q.Sort, "desc:", q.Desc, "limit:", q.Limit)

	_, err = tasks.ParseListQuery(url.Values{"limit": {"0"}, "sort": {"size"}})
	fmt.Println(err)
	// Output:
	// status: pending
	// priorities: [high low]
	// tags: [work home]
	// search: milk
	// due before: 2026-12-01T00:00:00Z
	// due after set: false
	// sort: due_date desc: true limit: 20
	// bad_request: invalid list parameters
}
