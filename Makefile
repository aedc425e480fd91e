# Fluxbase: the two commands are `make run` and `make test`; both set up what is missing.
.PHONY: setup extension server run psql test bench reset

setup:
	scripts/setup.sh

extension: setup
	scripts/install-extension.sh

server:
	cargo build --release -p fluxbase-server

## make run: cluster in .fluxbase/dev, demo schema, server on 127.0.0.1:8080
## make run DEMO=chinook: the same plus the Chinook music-store demo (README "Chinook demo")
DEMO ?= notes
run: extension server
	DEMO=$(DEMO) scripts/run.sh

## make psql: the SQL admin console (superuser) on the make-run database
psql:
	scripts/cluster.sh psql .fluxbase/dev fluxbase

## make test: unit tests, the extension's pg_tests, black-box tests on a throwaway cluster
test: extension
	scripts/test.sh

## make bench: performance figures beside their baselines, same run (not a test)
bench: extension
	scripts/bench.sh

## make reset: throw the make-run cluster away (the next make run starts from scratch)
reset:
	scripts/cluster.sh destroy .fluxbase/dev
