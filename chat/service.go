package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"tasksync"
	"tasksync/internal/reqlog"
)

// Publisher sends a frame to every session of a user, on every instance.
// *realtime.Hub satisfies it.
type Publisher interface {
	PublishUser(ctx context.Context, userID string, frame []byte) error
}

// Signaler sends an opaque payload to the other instances where a user
// has sessions (and this one); *realtime.Hub satisfies it. The receiving
// side hands the payload to [Service.HandleSignal].
type Signaler interface {
	SignalUser(ctx context.Context, userID string, payload []byte) error
}

// MaxMessageRunes is the longest user message accepted.
const MaxMessageRunes = 4000

// notText is the message for text that Postgres cannot store, or that
// arrived as invalid UTF-8 or lone surrogate escapes in JSON.
const notText = "must be UTF-8 text without NUL characters"

// Defaults of [Config] and [Agent], used by the server's configuration too.
const (
	DefaultMaxRounds       = 5                // model calls per turn
	DefaultModelTimeout    = 60 * time.Second // per model call
	DefaultHistoryMessages = 30               // stored messages shown to the model
	DefaultMaxTurnsPerUser = 3                // turns running at once per user on one instance
	DefaultMaxTurns        = 64               // turns running at once on one instance
	DefaultMaxToolCalls    = 16               // tool calls run per round
)

// Config holds the limits of a [Service]; zero fields take the Default
// values above.
type Config struct {
	MaxRounds       int
	ModelTimeout    time.Duration
	HistoryMessages int
	MaxTurnsPerUser int
	MaxTurns        int
}

func (c *Config) defaults() {
	if c.MaxRounds <= 0 {
		c.MaxRounds = DefaultMaxRounds
	}
	if c.ModelTimeout <= 0 {
		c.ModelTimeout = DefaultModelTimeout
	}
	if c.HistoryMessages <= 0 {
		c.HistoryMessages = DefaultHistoryMessages
	}
	if c.MaxTurnsPerUser <= 0 {
		c.MaxTurnsPerUser = DefaultMaxTurnsPerUser
	}
	if c.MaxTurns <= 0 {
		c.MaxTurns = DefaultMaxTurns
	}
}

// ServiceDeps are the collaborators of a Service.
type ServiceDeps struct {
	Store *Store
	Tools *Tools
	Model Model
	// Publisher receives every event of every turn, for the user's
	// sockets; nil sends them to followers only.
	Publisher Publisher
	// Signaler relays chat.cancel to the instance running the turn; nil
	// keeps cancels on this instance.
	Signaler Signaler
	Logger   *slog.Logger
	// Now is the clock the model is told the time by and the offline
	// assistant reads "tomorrow" from; nil means time.Now (tests fix it).
	Now func() time.Time
}

// Service runs assistant turns. Each turn runs in a goroutine the Service
// owns, from [Service.Start] until its assistant message is stored and its
// last event published; [Service.Stop] cancels them all and waits. See the
// package documentation for the limits and the lease that keeps one turn
// per conversation across instances.
type Service struct {
	cfg    Config
	store  *Store
	agent  *Agent
	pub    Publisher
	sig    Signaler
	logger *slog.Logger

	root    context.Context
	stopAll context.CancelCauseFunc

	mu      sync.Mutex
	turns   map[int64]*turn // running here, by conversation id
	perUser map[string]int
	total   int // sum of perUser
	closing bool
	wg      sync.WaitGroup
}

// NewService returns a Service; nothing runs until [Service.Start].
func NewService(cfg Config, d ServiceDeps) *Service {
	cfg.defaults()
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	root, stop := context.WithCancelCause(context.Background())
	return &Service{
		cfg: cfg, store: d.Store, pub: d.Publisher, sig: d.Signaler, logger: d.Logger,
		agent: &Agent{Model: d.Model, Tools: d.Tools, MaxRounds: cfg.MaxRounds, ModelTimeout: cfg.ModelTimeout, Logger: d.Logger, Now: d.Now},
		root:  root, stopAll: stop,
		turns: map[int64]*turn{}, perUser: map[string]int{},
	}
}

// Store returns the service's store (REST history reads it).
func (s *Service) Store() *Store { return s.store }

// turnDeadline bounds a whole turn: every round may use its model timeout
// and some time for tools.
func (s *Service) turnDeadline() time.Duration {
	return time.Duration(s.cfg.MaxRounds) * (s.cfg.ModelTimeout + 30*time.Second)
}

// The conversation lease of a running turn is short and renewed while the
// turn runs, so that a conversation whose instance died frees up within
// LeaseTTL instead of after a whole turn deadline.
const (
	LeaseTTL   = 30 * time.Second
	leaseRenew = LeaseTTL / 3
)

// StartRequest asks for a turn.
type StartRequest struct {
	UserID string
	// ConversationID continues a conversation; 0 creates one.
	ConversationID int64
	Message        string
	// Zone is the user's time zone (nil: UTC): the assistant reads dates
	// in it and tells the model the local time.
	Zone *time.Location
	// RequestID and SessionID name the chat.send frame and socket that
	// asked (echoed in chat.started); empty for REST.
	RequestID json.RawMessage
	SessionID string
	// Follow gives the caller its own copy of the turn's events through
	// [Turn.Next] (REST and SSE), in addition to the Publisher.
	Follow bool
	// Bind, if not nil, cancels the turn when it is done (a REST request
	// whose client went away).
	Bind context.Context
}

// Turn is a started turn, as the caller sees it.
type Turn struct {
	ConversationID int64
	TurnID         string
	// MessageID is the stored user message.
	MessageID int64
	Created   bool
	Title     string
	follow    *outbox
}

// Take returns the events that arrived since the last call, without
// waiting (text deltas that piled up are merged into one); more is false
// once the last event (chat.done or chat.error) has been taken. Wait on
// [Turn.Ready] between calls. Only for turns started with Follow.
func (t *Turn) Take() (events []Event, more bool) { return t.follow.take() }

// Ready receives a value when events may be waiting for [Turn.Take].
func (t *Turn) Ready() <-chan struct{} { return t.follow.wake }

// storeFailure logs a turn's failed store call at the level
// tasksync.LogLevel gives err and returns the turn's error: unavailable
// (send the message again) when the database was unreachable or timed out,
// internal with bugMsg otherwise.
func (s *Service) storeFailure(ctx context.Context, t *turn, what string, err error, bugMsg string) *MessageError {
	level, _ := tasksync.LogLevel(err)
	s.logger.Log(ctx, level, what, "conversation", t.conv, "turn", t.id, "err", err)
	if e := tasksync.AsError(err); e.Code == tasksync.CodeUnavailable {
		return &MessageError{Code: ErrShuttingDown, Message: e.Message}
	}
	return &MessageError{Code: ErrInternal, Message: bugMsg}
}

// turn is a running turn.
type turn struct {
	id      string
	userID  string
	conv    int64
	zone    *time.Location
	cancel  context.CancelCauseFunc
	pubBox  *outbox // nil without a Publisher
	follow  *outbox // nil without Follow
	started *Started
}

func (t *turn) emit(ev Event) {
	if t.pubBox != nil {
		t.pubBox.push(ev)
	}
	if t.follow != nil {
		t.follow.push(ev)
	}
}

// ValidateMessage checks a user message and returns it trimmed.
func ValidateMessage(msg string) (string, error) {
	msg = strings.TrimSpace(msg)
	switch {
	case msg == "":
		return "", tasksync.Invalid(map[string]string{"message": "is required and must not be blank"})
	case !utf8.ValidString(msg) || strings.ContainsRune(msg, 0):
		return "", tasksync.Invalid(map[string]string{"message": notText})
	case utf8.RuneCountInString(msg) > MaxMessageRunes:
		return "", tasksync.Invalid(map[string]string{"message": fmt.Sprintf("must be at most %d characters", MaxMessageRunes)})
	}
	return msg, nil
}

// Start validates the request, claims the conversation (creating it when
// ConversationID is 0), stores the user's message and starts the turn in
// its own goroutine. It returns at once: the answer streams as events.
//
// Errors are *tasksync.Error values: invalid (the message), not_found (no
// such conversation for this user), conflict (a turn is already running in
// the conversation, on any instance), rate_limited (the user has
// MaxTurnsPerUser turns running here), unavailable (the instance is at
// MaxTurns or shutting down).
func (s *Service) Start(ctx context.Context, req StartRequest) (*Turn, error) {
	text, err := ValidateMessage(req.Message)
	if err != nil {
		return nil, err
	}
	if req.ConversationID < 0 {
		return nil, tasksync.Invalid(map[string]string{"conversation_id": "must be the positive id of one of your conversations"})
	}
	if req.UserID == "" {
		return nil, fmt.Errorf("chat: Start without a user")
	}
	if err := s.reserve(req.UserID); err != nil {
		return nil, err
	}
	turnID := "t_" + strings.ToLower(reqlog.NewID())
	dbctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conv, userMsg, created, err := s.store.BeginTurn(dbctx, req.UserID, req.ConversationID, turnID, text, LeaseTTL)
	cancel()
	if err != nil {
		s.unreserve(req.UserID)
		return nil, err
	}

	tctx, cancelTurn := context.WithCancelCause(s.root)
	tctx, cancelDeadline := context.WithTimeoutCause(tctx, s.turnDeadline(), errTurnDeadline)
	t := &turn{
		id: turnID, userID: req.UserID, conv: conv.ID, zone: req.Zone,
		cancel: func(cause error) { cancelTurn(cause); cancelDeadline() },
		started: &Started{Type: TypeStarted, ConversationID: conv.ID, TurnID: turnID, MessageID: userMsg.ID,
			Message: text, Created: created, Title: conv.Title, RequestID: req.RequestID, SessionID: req.SessionID,
			Model: s.agent.Model.Name()},
	}
	if s.pub != nil {
		t.pubBox = newOutbox()
	}
	if req.Follow {
		t.follow = newOutbox()
	}

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		t.cancel(errShutdown)
		s.unreserve(req.UserID)
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = s.store.ReleaseTurn(rctx, req.UserID, conv.ID, turnID)
		rcancel()
		return nil, tasksync.Errorf(tasksync.CodeUnavailable, "the server is shutting down; send the message again")
	}
	s.turns[conv.ID] = t
	s.wg.Add(1)
	s.mu.Unlock()

	unbind := func() bool { return false }
	if req.Bind != nil {
		unbind = context.AfterFunc(req.Bind, func() { t.cancel(errCancelled) })
	}
	go func() {
		defer s.wg.Done()
		defer unbind()
		s.run(tctx, t)
	}()
	return &Turn{ConversationID: conv.ID, TurnID: turnID, MessageID: userMsg.ID, Created: created,
		Title: conv.Title, follow: t.follow}, nil
}

func (s *Service) reserve(user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return tasksync.Errorf(tasksync.CodeUnavailable, "the server is shutting down; send the message again")
	}
	if s.perUser[user] >= s.cfg.MaxTurnsPerUser {
		return tasksync.Errorf(tasksync.CodeRateLimited,
			"too many answers are being written for you at once (at most %d); wait for one to finish or cancel it", s.cfg.MaxTurnsPerUser)
	}
	if s.total >= s.cfg.MaxTurns {
		return tasksync.Errorf(tasksync.CodeUnavailable, "the assistant is busy; try again in a moment")
	}
	s.perUser[user]++
	s.total++
	return nil
}

func (s *Service) unreserve(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.perUser[user]--; s.perUser[user] <= 0 {
		delete(s.perUser, user)
	}
}

// run is the turn's goroutine: history, the agent's rounds, storing the
// assistant message (which releases the conversation), the last event.
func (s *Service) run(ctx context.Context, t *turn) {
	start := time.Now()
	leaseCtx, stopLease := context.WithCancel(context.WithoutCancel(ctx))
	leaseDone := make(chan struct{})
	go func() {
		defer close(leaseDone)
		s.keepLease(leaseCtx, t)
	}()
	var pubDone chan struct{}
	if t.pubBox != nil {
		pubDone = make(chan struct{})
		go func() {
			defer close(pubDone)
			s.publish(t)
		}()
	}
	defer func() {
		t.cancel(nil)
		if t.pubBox != nil {
			t.pubBox.close()
			<-pubDone
		}
		if t.follow != nil {
			t.follow.close()
		}
	}()

	t.emit(t.started)
	var out TurnOutcome
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	history, err := s.store.History(hctx, t.userID, t.conv, s.cfg.HistoryMessages)
	hcancel()
	if err != nil {
		if ctx.Err() != nil {
			status, e := s.agent.interrupted(ctx)
			out = TurnOutcome{Status: status, Error: e}
		} else {
			out = TurnOutcome{Status: StatusError, Error: s.storeFailure(ctx, t, "chat: read history", err, "internal error")}
		}
	} else {
		out = s.agent.Run(ctx, TurnInput{UserID: t.userID, ConversationID: t.conv, TurnID: t.id, Zone: t.zone, History: history}, t.emit)
	}

	stopLease()
	<-leaseDone
	// Store even when the turn was cancelled or the server is stopping:
	// the partial answer and the tool calls that ran are part of the
	// conversation.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	msg, err := s.store.FinishTurn(sctx, t.userID, t.conv, t.id, Message{
		Role: RoleAssistant, Content: out.Text, ToolCalls: out.ToolCalls, Status: out.Status, Error: out.Error,
	})
	if err != nil {
		out.Status, out.Error = StatusError, s.storeFailure(ctx, t, "chat: store assistant message", err, "the answer could not be saved")
		_ = s.store.ReleaseTurn(sctx, t.userID, t.conv, t.id)
	}
	scancel()
	// The turn is over once its message is stored: free its slot before
	// telling anyone, so that a client answering chat.done at once is not
	// refused. Only publishing what is queued remains.
	s.mu.Lock()
	if s.turns[t.conv] == t {
		delete(s.turns, t.conv)
	}
	s.mu.Unlock()
	s.unreserve(t.userID)

	calls := out.ToolCalls
	if calls == nil {
		calls = []ToolCall{}
	}
	if out.Status == StatusError {
		t.emit(&Failed{Type: TypeError, ConversationID: t.conv, TurnID: t.id, MessageID: msg.ID,
			Code: out.Error.Code, Message: out.Error.Message, Text: out.Text, ToolCalls: calls})
	} else {
		t.emit(&Done{Type: TypeDone, ConversationID: t.conv, TurnID: t.id, MessageID: msg.ID,
			Status: out.Status, Text: out.Text, ToolCalls: calls})
	}
	s.logger.Info("chat turn ended", "conversation", t.conv, "turn", t.id, "status", out.Status,
		"tool_calls", len(out.ToolCalls), "duration", time.Since(start))
}

// keepLease renews the turn's conversation lease every leaseRenew until
// ctx ends.
func (s *Service) keepLease(ctx context.Context, t *turn) {
	tick := time.NewTicker(leaseRenew)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		held, err := s.store.RenewTurn(rctx, t.userID, t.conv, t.id, LeaseTTL)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			s.logger.Warn("chat: renew conversation lease", "conversation", t.conv, "turn", t.id, "err", err)
		case err == nil && !held:
			// It expired (the database was unreachable for a while) and
			// may have been claimed by another turn: this one finishes,
			// but no longer excludes others.
			s.logger.Warn("chat: conversation lease lost", "conversation", t.conv, "turn", t.id)
			return
		}
	}
}

// publishTimeout bounds one broker publish of a turn event.
const publishTimeout = 2 * time.Second

// publish sends the turn's events to the user's sessions, in order, until
// the turn's outbox is closed and drained. The turn never waits for it:
// while the broker is slow, deltas pile up in the outbox and are merged.
func (s *Service) publish(t *turn) {
	failed := false
	for {
		events, ok := t.pubBox.next(context.Background())
		if !ok {
			return
		}
		for _, ev := range events {
			ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
			err := s.pub.PublishUser(ctx, t.userID, Encode(ev))
			cancel()
			if err != nil && !failed {
				failed = true // once per turn: the broker logs its own state
				s.logger.Warn("chat: publishing turn events failed; sockets miss part of this turn",
					"conversation", t.conv, "turn", t.id, "err", err)
			}
		}
	}
}

// CancelResult says what [Service.Cancel] did.
type CancelResult string

// The results of Cancel.
const (
	// CancelStopping: the turn runs here and is stopping; chat.done with
	// status cancelled follows.
	CancelStopping CancelResult = "cancelling"
	// CancelRelayed: the turn runs on another instance, which was asked
	// to stop it; chat.done with status cancelled follows from there.
	CancelRelayed CancelResult = "relayed"
	// CancelIdle: no turn is running in the conversation.
	CancelIdle CancelResult = "idle"
)

// Cancel stops the turn running in a conversation of userID, here or, via
// the Signaler, on the instance that runs it. The partial answer is kept
// (stored with status cancelled). A conversation of another user is not
// found.
func (s *Service) Cancel(ctx context.Context, userID string, conversationID int64) (CancelResult, error) {
	if conversationID <= 0 {
		return "", tasksync.Invalid(map[string]string{"conversation_id": "is required: the conversation whose answer to stop"})
	}
	if s.cancelLocal(userID, conversationID, "") {
		return CancelStopping, nil
	}
	dbctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	turnID, err := s.store.ActiveTurn(dbctx, userID, conversationID)
	if err != nil {
		return "", err
	}
	if turnID == "" || s.sig == nil {
		// Without a Signaler there is no other instance: a lease held with
		// no turn here is a leftover that expires by itself.
		return CancelIdle, nil
	}
	// It may have started here since we looked.
	if s.cancelLocal(userID, conversationID, turnID) {
		return CancelStopping, nil
	}
	payload, _ := json.Marshal(cancelSignal{Kind: signalCancel, ConversationID: conversationID, TurnID: turnID})
	if err := s.sig.SignalUser(dbctx, userID, payload); err != nil {
		return "", tasksync.Errorf(tasksync.CodeUnavailable, "could not reach the instance writing this answer; try again")
	}
	return CancelRelayed, nil
}

func (s *Service) cancelLocal(userID string, conversationID int64, turnID string) bool {
	s.mu.Lock()
	t := s.turns[conversationID]
	s.mu.Unlock()
	if t == nil || t.userID != userID || (turnID != "" && t.id != turnID) {
		return false
	}
	t.cancel(errCancelled)
	return true
}

// signalCancel is the kind of cancel signals; other kinds are ignored, so
// that other features can share the signal channel.
const signalCancel = "chat.cancel"

type cancelSignal struct {
	Kind           string `json:"kind"`
	ConversationID int64  `json:"conversation_id"`
	TurnID         string `json:"turn_id"`
}

// maxSignalBytes bounds a signal payload worth decoding.
const maxSignalBytes = 1024

// decodeSignal reads a cancel signal; ok is false for anything else.
func decodeSignal(payload []byte) (cancelSignal, bool) {
	var sig cancelSignal
	if len(payload) > maxSignalBytes || json.Unmarshal(payload, &sig) != nil {
		return cancelSignal{}, false
	}
	if sig.Kind != signalCancel || sig.ConversationID <= 0 || sig.TurnID == "" || len(sig.TurnID) > 64 {
		return cancelSignal{}, false
	}
	return sig, true
}

// HandleSignal receives a payload sent with the Signaler to userID (on the
// broker's delivery goroutine): a cancel for a turn running here stops
// it. It never blocks.
func (s *Service) HandleSignal(userID string, payload []byte) {
	if sig, ok := decodeSignal(payload); ok {
		s.cancelLocal(userID, sig.ConversationID, sig.TurnID)
	}
}

// Stop cancels every running turn (each stores its partial answer with
// status error, code unavailable, and publishes chat.error) and waits
// until their goroutines are gone. New turns are refused from the first
// call. It is idempotent and safe to call concurrently.
func (s *Service) Stop() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.stopAll(errShutdown)
	s.wg.Wait()
}

// Running reports the number of turns running here.
func (s *Service) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.turns)
}

// outbox is a turn's queue of events for one consumer (the publisher, or
// a REST follower). Pushing never blocks; consecutive text deltas that
// pile up are merged, so a slow consumer costs memory proportional to the
// answer's text, not to the number of deltas.
type outbox struct {
	mu     sync.Mutex
	items  []Event
	closed bool
	wake   chan struct{}
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

func (o *outbox) push(ev Event) {
	o.mu.Lock()
	if d, ok := ev.(*Delta); ok && len(o.items) > 0 {
		if last, ok := o.items[len(o.items)-1].(*Delta); ok {
			merged := *last // events are shared between outboxes: copy
			merged.Text += d.Text
			o.items[len(o.items)-1] = &merged
			o.mu.Unlock()
			return
		}
	}
	o.items = append(o.items, ev)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// take returns what is queued; more is false when the outbox is closed
// and empty.
func (o *outbox) take() (events []Event, more bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	events, o.items = o.items, nil
	return events, len(events) > 0 || !o.closed
}

// next waits for events; ok is false when the outbox is closed and
// drained, or ctx is done.
func (o *outbox) next(ctx context.Context) ([]Event, bool) {
	for {
		events, more := o.take()
		if len(events) > 0 {
			return events, true
		}
		if !more {
			return nil, false
		}
		select {
		case <-o.wake:
		case <-ctx.Done():
			return nil, false
		}
	}
}
