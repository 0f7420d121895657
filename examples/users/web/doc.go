// Package web is the users example's HTTP API: commands in, queries out.
//
//	POST   /users              {"name","email"}     -> 201 {"id","version"}
//	PATCH  /users/{id}         {"name"?,"email"?}   -> 200 {"id","version","changed"}
//	DELETE /users/{id}                              -> 200 {"id","version"}
//	GET    /users/{id}                              -> 200 user | 404 | 410 deleted
//	GET    /users?email=<address>                   -> 200 user | 404
//
// Commands go to the write side (eventlog) and answer with the user's
// stream version; queries read the read model only, which shows a
// command's effect once the projection has applied it: a GET whose
// "version" is at least the command's has seen it. Handlers are thin:
// bind, call one method, encode; errors map to problem+json in one table
// (problem.go). It uses net/http's ServeMux, not Echo like the server:
// an example should need nothing beyond the standard library to read.
package web
