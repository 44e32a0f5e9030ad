package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/httprate"
	"github.com/jackc/pgx/v5/pgxpool"

	"tasksync"
	"tasksync/auth"
	"tasksync/chat"
	"tasksync/internal/httpjson"
	"tasksync/realtime"
	"tasksync/tasks"
)

// chatServer is the assistant wired into the server: the chat service over
// the task service, publishing turn events through the hub (every session
// of the user, on every instance) and relaying cancels between instances
// with hub signals; the socket adapter (realtime.ChatService); the REST
// routes and /mcp.
type chatServer struct {
	svc *chat.Service
	mcp http.Handler
	cfg Config
	log *slog.Logger
}

var _ realtime.ChatService = (*chatServer)(nil)

// newChat builds the assistant. Its turns are cancelled as soon as ctx
// (the server's) ends, so that shutdown does not wait for model calls;
// [chatServer.Stop] waits for them to store what they have.
func newChat(ctx context.Context, cfg Config, log *slog.Logger, db *pgxpool.Pool, hub *realtime.Hub, taskService *tasks.Service) *chatServer {
	// The offline assistant paces its words so that it visibly streams.
	var model chat.Model = chat.Offline{WordDelay: 15 * time.Millisecond}
	if cfg.Chat.OpenAIAPIKey != "" || cfg.Chat.OpenAIBaseURL != "" {
		model = chat.NewOpenAI(chat.OpenAIConfig{
			APIKey: cfg.Chat.OpenAIAPIKey, BaseURL: cfg.Chat.OpenAIBaseURL, Model: cfg.Chat.OpenAIModel,
			MaxRetries: cfg.Chat.ModelRetries,
		})
		log.Info("chat: model configured", "model", cfg.Chat.OpenAIModel, "base_url", cfg.Chat.OpenAIBaseURL)
	} else {
		log.Info("chat: OPENAI_API_KEY and OPENAI_BASE_URL not set: the built-in offline assistant answers")
	}
	tools := chat.NewTools(taskService, log)
	svc := chat.NewService(chat.Config{
		MaxRounds:       cfg.Chat.MaxRounds,
		ModelTimeout:    cfg.Chat.ModelTimeout,
		HistoryMessages: cfg.Chat.HistoryMessages,
		MaxTurnsPerUser: cfg.Chat.MaxTurnsPerUser,
		MaxTurns:        cfg.Chat.MaxTurns,
	}, chat.ServiceDeps{
		Store: chat.NewStore(db), Tools: tools, Model: model,
		Publisher: hub, Signaler: hub, Logger: log,
	})
	hub.OnSignal(svc.HandleSignal)
	context.AfterFunc(ctx, svc.Stop)
	return &chatServer{svc: svc, mcp: chat.NewMCPHandler(chat.NewMCPServer(tools, log), log), cfg: cfg, log: log}
}

// Stop cancels the running turns and waits until they stored their
// messages. serve defers it, so it runs before Redis and the pool close.
func (c *chatServer) Stop() { c.svc.Stop() }

// chatSendReply answers chat.send at once; the turn streams as chat.*
// frames to every session of the user.
type chatSendReply struct {
	Type           string          `json:"type"`
	ID             json.RawMessage `json:"id,omitempty"`
	Re             string          `json:"re"`
	ConversationID int64           `json:"conversation_id"`
	TurnID         string          `json:"turn_id"`
	MessageID      int64           `json:"message_id"`
	Created        bool            `json:"created"`
	Title          string          `json:"title"`
}

// chatCancelReply answers chat.cancel: status is cancelling (the turn runs
// here), relayed (another instance runs it) or idle (nothing to stop).
type chatCancelReply struct {
	Type           string            `json:"type"`
	ID             json.RawMessage   `json:"id,omitempty"`
	Re             string            `json:"re"`
	ConversationID int64             `json:"conversation_id"`
	Status         chat.CancelResult `json:"status"`
}

// Chat serves the chat.send and chat.cancel frames of a socket.
func (c *chatServer) Chat(ctx context.Context, userID string, req realtime.ChatRequest) (any, error) {
	switch req.Type {
	case realtime.TypeChatSend:
		msg, err := chat.DecodeMessage(req.Message)
		if err != nil {
			return nil, err
		}
		zone, err := chat.DecodeZone(req.TZ)
		if err != nil {
			return nil, err
		}
		turn, err := c.svc.Start(ctx, chat.StartRequest{
			UserID: userID, ConversationID: req.ConversationID, Message: msg, Zone: zone,
			RequestID: req.ID, SessionID: req.SessionID,
		})
		if err != nil {
			return nil, err
		}
		return chatSendReply{Type: realtime.TypeReply, ID: req.ID, Re: req.Type, ConversationID: turn.ConversationID,
			TurnID: turn.TurnID, MessageID: turn.MessageID, Created: turn.Created, Title: turn.Title}, nil
	case realtime.TypeChatCancel:
		status, err := c.svc.Cancel(ctx, userID, req.ConversationID)
		if err != nil {
			return nil, err
		}
		return chatCancelReply{Type: realtime.TypeReply, ID: req.ID, Re: req.Type, ConversationID: req.ConversationID, Status: status}, nil
	default:
		return nil, tasksync.Errorf(tasksync.CodeBadRequest, "unknown chat frame %q", req.Type)
	}
}

// register adds the chat REST routes (behind api: authentication, path
// user, rate limit) and /mcp. MCP requests carry no user in the path: they
// are authenticated with the same bearer tokens and rate limited per user
// on their own budget, and the tools act for the token's user.
func (c *chatServer) register(mux *http.ServeMux, api func(http.Handler) http.Handler, verifier auth.TokenVerifier) {
	(&chat.Handler{Service: c.svc, MaxBody: c.cfg.MaxBodyBytes}).Register(mux, api)

	limiter := httprate.NewRateLimiter(c.cfg.APIRateLimit, c.cfg.APIRateWindow,
		httprate.WithKeyFuncs(func(r *http.Request) (string, error) {
			id, _ := auth.FromContext(r.Context())
			return id.UserID, nil
		}),
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			httpjson.WriteError(w, r, tasksync.Errorf(tasksync.CodeRateLimited, "too many requests; retry after the time in Retry-After"))
		}),
	)
	h := auth.Middleware(verifier)(limiter.Handler(c.mcp))
	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		mux.Handle(method+" /mcp", h)
	}
}
