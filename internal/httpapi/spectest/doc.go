// Package spectest checks HTTP traffic against the OpenAPI description of
// the API (httpapi.OpenAPI), with kin-openapi's openapi3filter. Tests wrap
// the server's handler with Handler, so every request they make and every
// answer the server gives is validated: a route, parameter, header, media
// type, status or body member the description does not have fails the
// test, and so the description cannot drift from the server.
//
// The rules (Validator.Check): a response must be one the description lists
// for its operation; a request the description rejects must be answered
// with 4xx (tests send invalid requests on purpose; the server must not
// accept more than is described); a route the description lacks must be
// answered with a 4xx problem. Streamed bodies (NDJSON, Server-Sent
// Events) are read as arrays of their items, the convention the
// description's introduction states; a stream cut by a failure is checked
// for status and headers only.
package spectest
