// Package contract checks the server against its machine-readable contract
// (package docs): socket frames against the JSON Schemas of docs/schemas
// (frames*.go), REST answers against docs/openapi.yaml (openapi*.go). The Go
// tests call it on every frame and response they see, so that the documents
// cannot drift from what the server does; the TypeScript SDK's types and
// tests use the same schemas.
package contract
