// Package docs holds the machine-readable contract of tasksync, embedded so
// that the server can serve it and the tests can check the server against
// it: the OpenAPI document of the REST API and the JSON Schemas (with their
// AsyncAPI document) of every socket frame. The prose lives beside them in
// the Markdown files of this folder.
package docs
