module example.com/importer

go 1.26.8

require github.com/eventlog/eventlog/client v0.0.0-00010101000000-000000000000

require github.com/google/uuid v1.6.0 // indirect

replace github.com/eventlog/eventlog/client => ../../../../client
