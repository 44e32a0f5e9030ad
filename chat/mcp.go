package chat

import (
	"context"
	"log/slog"
	"net/http"

	mcpauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"tasksync/auth"
	"tasksync/tasks"
)

// MCPVersion is the server version announced to MCP clients.
const MCPVersion = "1.0.0"

// NewMCPServer returns an MCP server offering the five task tools. Each
// call runs for the user of the bearer token that carried it (the
// TokenInfo the transport attaches to the request), never for a user named
// in the arguments.
func NewMCPServer(tools *Tools, logger *slog.Logger) *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "tasksync", Title: "tasksync tasks", Version: MCPVersion}, &mcp.ServerOptions{
		Instructions: "Tools to read and change the authenticated user's todo tasks. " +
			"Name tasks by id; call list_tasks to find the id of a task named by its title.",
		Logger: logger,
	})
	for _, spec := range tools.Specs() {
		name := spec.Name
		srv.AddTool(&mcp.Tool{
			Name:        name,
			Description: spec.Description,
			InputSchema: spec.Parameters,
			Annotations: toolAnnotations(name),
		}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var user string
			if req.Extra != nil && req.Extra.TokenInfo != nil {
				user = req.Extra.TokenInfo.UserID
			}
			if user == "" {
				// The handler below never lets a request through without
				// one; refuse rather than guess.
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: `{"error":"unauthenticated"}`}}}, nil
			}
			result, isErr := tools.Call(WithActor(ctx, tasks.ActorMCP, ""), user, name, req.Params.Arguments)
			return &mcp.CallToolResult{IsError: isErr, Content: []mcp.Content{&mcp.TextContent{Text: string(result)}}}, nil
		})
	}
	return srv
}

func toolAnnotations(name string) *mcp.ToolAnnotations {
	yes, no := true, false
	switch name {
	case ToolListTasks:
		return &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: &no}
	case ToolDeleteTask:
		return &mcp.ToolAnnotations{DestructiveHint: &yes, OpenWorldHint: &no}
	case ToolCompleteTask, ToolUpdateTask:
		return &mcp.ToolAnnotations{DestructiveHint: &no, IdempotentHint: true, OpenWorldHint: &no}
	default:
		return &mcp.ToolAnnotations{DestructiveHint: &no, OpenWorldHint: &no}
	}
}

// NewMCPHandler serves srv over MCP streamable HTTP. It must run behind
// auth.Middleware, which verifies the bearer token on every request (POST,
// GET and DELETE alike) and puts the caller in the context; this handler
// hands that identity to the SDK as TokenInfo, which scopes the tools.
//
// The transport is stateless: any instance answers any request, with no
// session to lose when a load balancer moves a client. GET (the optional
// server-to-client stream) and DELETE are answered 405, which MCP clients
// accept.
func NewMCPHandler(srv *mcp.Server, logger *slog.Logger) http.Handler {
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{
		Stateless: true,
		Logger:    logger,
		// The SDK's DNS-rebinding guard refuses loopback connections with
		// a non-loopback Host, which is every request behind a local
		// reverse proxy. It protects unauthenticated local servers; every
		// request here carries a verified bearer token.
		DisableLocalhostProtection: true,
		MaxRequestBodyBytes:        1 << 20,
	})
	identity := func(ctx context.Context, _ string, r *http.Request) (*mcpauth.TokenInfo, error) {
		id, ok := auth.FromContext(r.Context())
		if !ok || id.UserID == "" {
			return nil, mcpauth.ErrInvalidToken
		}
		return &mcpauth.TokenInfo{UserID: id.UserID, Expiration: id.ExpiresAt}, nil
	}
	return mcpauth.RequireBearerToken(identity, &mcpauth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
}
