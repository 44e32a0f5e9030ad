package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/shared"

	"tasksync/internal/reqlog"
)

// OpenAIConfig configures [NewOpenAI].
type OpenAIConfig struct {
	// APIKey is sent as a bearer token; empty sends none (local servers
	// such as Ollama or llama.cpp need none).
	APIKey string
	// BaseURL of an OpenAI-compatible API, e.g. http://localhost:11434/v1;
	// empty means https://api.openai.com/v1/.
	BaseURL string
	// Model is the model name, e.g. gpt-4o-mini or llama3.1.
	Model string
	// HTTPClient makes the requests; nil means a client without an overall
	// timeout (each call is bounded by its context: CHAT_MODEL_TIMEOUT).
	HTTPClient *http.Client
	// MaxRetries is how often a call that failed before streaming began
	// (connection refused, 429, 5xx) is retried; 0 means none.
	MaxRetries int
}

// OpenAI is a [Model] over the Chat Completions API with streaming and tool
// calls, through the official openai-go client. It works with any
// OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, llama.cpp server,
// LiteLLM). It is safe for concurrent use.
type OpenAI struct {
	client openai.Client
	model  string
	host   string // for logs: where the model is
}

// NewOpenAI returns the model of cfg.
func NewOpenAI(cfg OpenAIConfig) *OpenAI {
	opts := []option.RequestOption{option.WithMaxRetries(max(cfg.MaxRetries, 0))}
	host := "api.openai.com"
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
		if u, err := url.Parse(cfg.BaseURL); err == nil && u.Host != "" {
			host = u.Host
		}
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	return &OpenAI{client: openai.NewClient(opts...), model: cfg.Model, host: host}
}

// Name returns the configured model name.
func (m *OpenAI) Name() string { return m.model }

// Complete runs one streamed Chat Completions call. Text deltas go to
// onText as they arrive; tool-call fragments are accumulated by their index
// (the id and name come in the first fragment of a call, the arguments in
// pieces after it, and the calls of one reply may interleave).
func (m *OpenAI) Complete(ctx context.Context, req ModelRequest, onText func(string)) (ModelReply, error) {
	params := openai.ChatCompletionNewParams{
		Model:    shared.ChatModel(m.model),
		Messages: toOpenAIMessages(req),
	}
	for _, t := range req.Tools {
		var schema map[string]any
		if err := json.Unmarshal(t.Parameters, &schema); err != nil {
			return ModelReply{}, fmt.Errorf("tool %s: bad schema: %w", t.Name, err)
		}
		params.Tools = append(params.Tools, openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:        t.Name,
			Description: openai.String(t.Description),
			Parameters:  shared.FunctionParameters(schema),
		}))
	}

	stream := m.client.Chat.Completions.NewStreaming(ctx, params)
	defer stream.Close()

	var (
		reply    ModelReply
		text     strings.Builder
		calls    toolCallAccumulator
		received bool // any chunk: the request got through
	)
	for stream.Next() {
		received = true
		chunk := stream.Current()
		for _, choice := range chunk.Choices {
			if choice.Index != 0 {
				continue // n is 1: other choices are not ours
			}
			d := choice.Delta
			for _, piece := range []string{d.Content, d.Refusal} {
				if piece != "" {
					text.WriteString(piece)
					onText(piece)
				}
			}
			for _, tc := range d.ToolCalls {
				calls.add(tc.Index, tc.ID, tc.Function.Name, tc.Function.Arguments)
			}
			if choice.FinishReason != "" {
				reply.FinishReason = choice.FinishReason
			}
		}
	}
	reply.Text = text.String()
	reply.ToolCalls = calls.result()
	if err := stream.Err(); err != nil {
		return reply, m.classify(ctx, err, received)
	}
	if ctx.Err() != nil {
		return reply, fmt.Errorf("model call: %w", context.Cause(ctx))
	}
	if reply.FinishReason == "" {
		// The body ended without a finish_reason (and so, most likely,
		// without [DONE]): the connection broke off mid-answer.
		return reply, &ModelError{Code: ErrModelUnavailable, Message: "the model stopped answering mid-reply; try again",
			Err: fmt.Errorf("the stream from %s ended without a finish_reason", m.host)}
	}
	return reply, nil
}

// classify turns a client error into a *ModelError with a message for the
// user, or the context's cause when the call was cancelled or timed out.
func (m *OpenAI) classify(ctx context.Context, err error, received bool) error {
	if ctx.Err() != nil {
		return fmt.Errorf("model call: %w", context.Cause(ctx))
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		detail := clip(apiErr.Message, 300)
		switch {
		case apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden:
			return &ModelError{Code: ErrModel, Err: err,
				Message: fmt.Sprintf("the model endpoint refused the API key (HTTP %d); check OPENAI_API_KEY", apiErr.StatusCode)}
		case apiErr.StatusCode == http.StatusNotFound:
			return &ModelError{Code: ErrModel, Err: err,
				Message: fmt.Sprintf("the model endpoint does not know model %q or the path (HTTP 404); check OPENAI_MODEL and OPENAI_BASE_URL", m.model)}
		case apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode >= 500:
			return &ModelError{Code: ErrModelUnavailable, Err: err,
				Message: fmt.Sprintf("the model is unavailable (HTTP %d); try again later", apiErr.StatusCode)}
		default:
			msg := fmt.Sprintf("the model rejected the request (HTTP %d)", apiErr.StatusCode)
			if detail != "" {
				msg += ": " + detail
			}
			return &ModelError{Code: ErrModel, Err: err, Message: msg}
		}
	}
	var streamErr *ssestream.StreamError
	if errors.As(err, &streamErr) {
		msg := "the model reported an error mid-reply"
		if detail := streamErrorMessage(streamErr.Event.Data); detail != "" {
			msg += ": " + detail
		}
		return &ModelError{Code: ErrModel, Err: err, Message: msg}
	}
	var netErr net.Error
	var urlErr *url.Error
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr) || errors.As(err, &urlErr) {
		if received {
			return &ModelError{Code: ErrModelUnavailable, Err: err,
				Message: "the model stopped answering mid-reply; try again"}
		}
		return &ModelError{Code: ErrModelUnavailable, Err: err,
			Message: "could not reach the model; try again later"}
	}
	return &ModelError{Code: ErrModel, Err: err,
		Message: "the model sent an answer this server could not read"}
}

// streamErrorMessage extracts error.message from an error event such as
// {"error":{"message":"...","type":"server_error"}}.
func streamErrorMessage(data []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil {
		return ""
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(e.Error, &obj) == nil && obj.Message != "" {
		return clip(obj.Message, 300)
	}
	var s string
	if json.Unmarshal(e.Error, &s) == nil {
		return clip(s, 300)
	}
	return ""
}

func clip(s string, n int) string {
	s = strings.ToValidUTF8(strings.TrimSpace(s), "")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func toOpenAIMessages(req ModelRequest) []openai.ChatCompletionMessageParamUnion {
	out := make([]openai.ChatCompletionMessageParamUnion, 0, len(req.Messages)+1)
	if req.System != "" {
		out = append(out, openai.SystemMessage(req.System))
	}
	for _, msg := range req.Messages {
		switch msg.Role {
		case RoleUser:
			out = append(out, openai.UserMessage(msg.Content))
		case RoleTool:
			out = append(out, openai.ToolMessage(msg.Content, msg.ToolCallID))
		case RoleAssistant:
			var a openai.ChatCompletionAssistantMessageParam
			if msg.Content != "" || len(msg.ToolCalls) == 0 {
				a.Content.OfString = param.NewOpt(msg.Content)
			}
			for _, tc := range msg.ToolCalls {
				a.ToolCalls = append(a.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{
					OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
						ID: tc.ID,
						Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{
							Name: tc.Name, Arguments: tc.Arguments,
						},
					},
				})
			}
			out = append(out, openai.ChatCompletionMessageParamUnion{OfAssistant: &a})
		}
	}
	return out
}

// toolCallAccumulator assembles streamed tool calls. Fragments name their
// call by index; a fragment whose id differs from the id already seen at
// its index starts a new call (some OpenAI-compatible servers send every
// call whole with index 0).
type toolCallAccumulator struct {
	calls []ModelToolCall
	slot  map[int64]int // index -> position in calls
}

func (a *toolCallAccumulator) add(index int64, id, name, args string) {
	if a.slot == nil {
		a.slot = map[int64]int{}
	}
	pos, ok := a.slot[index]
	if ok && id != "" && a.calls[pos].ID != "" && a.calls[pos].ID != id {
		ok = false
	}
	if !ok {
		a.calls = append(a.calls, ModelToolCall{})
		pos = len(a.calls) - 1
		a.slot[index] = pos
	}
	c := &a.calls[pos]
	if c.ID == "" {
		c.ID = id
	}
	if c.Name == "" {
		c.Name = name
	}
	c.Arguments += args
}

func (a *toolCallAccumulator) result() []ModelToolCall {
	for i := range a.calls {
		if a.calls[i].ID == "" {
			a.calls[i].ID = "call_" + strings.ToLower(reqlog.NewID())
		}
	}
	return a.calls
}
