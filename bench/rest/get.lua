-- wrk: a GET with the customer's bearer token (from the environment, set by scripts/bench-rest.sh).
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
