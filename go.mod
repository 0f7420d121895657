module github.com/eventlog/eventlog

go 1.26.8

require (
	github.com/apache/cassandra-gocql-driver/v2 v2.1.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/labstack/echo/v5 v5.3.1 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	gopkg.in/inf.v0 v0.9.1 // indirect
)
