-- wrk: POST ten rows as one JSON array (a bulk insert), return=minimal, the customer's token.
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Prefer"] = "return=minimal"
local rows = {}
for i = 1, 10 do rows[i] = string.format('{"body":"bulk row %d"}', i) end
wrk.body = "[" .. table.concat(rows, ",") .. "]"
