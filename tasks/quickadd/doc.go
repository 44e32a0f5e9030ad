// Package quickadd reads the quick-add text of a task, the way people type
// it into a todo app ("Pay rent every month on the 1st !high #home", "buy
// milk tomorrow at 9 with high priority"), into task fields: the title, the
// due time, a reminder, an RFC 5545 recurrence rule, the priority and tags.
// It is the one parser of such text in tasksync: the REST endpoint
// POST /api/{user_id}/parse (the board's quick-add preview) and the offline
// assistant use it; nothing else reads dates in words.
//
// # What it reads
//
// A small hand-written grammar over the words of the text (see the table
// test for every phrasing): days (today, tomorrow, tonight, this evening,
// next Monday, friday, on Dec 24, 24/12, the day after tomorrow, next week,
// end of month, in 3 days), times (at 9, 5pm, 21:00, noon), instants (in 2
// hours), rules (every day, every weekday, every 2 weeks on Friday, every
// month on the 1st, every year, until Dec 24, 10 times), reminders (remind
// me 30 min before, remind me at 8am), priorities (high priority, !high,
// p1) and tags (#home).
//
// Two rules keep dates out of titles and titles out of dates:
//   - Words that are dates only sometimes ("friday", "24/12", "on the 3rd")
//     are read only where nothing but other phrases follows them: "call mom
//     friday" is due Friday, "Friday drinks" is a title. Text in double
//     quotes is never read.
//   - A phrase that is shaped like a date, time, rule or label but cannot
//     be read ("at 25:00", "on the 31st of Febtember", "every 0 days",
//     "!urgent") is reported in Result.Unparsed with a reason and left out
//     of the title, so a caller can say so instead of saving it as words.
//
// Every date is made with time.Date in the caller's zone, so local times
// stay local across daylight-saving changes.
//
// # Concurrency
//
// Parse is a pure function of its arguments and safe for concurrent use.
// Handler is safe for concurrent use.
package quickadd
