"""Reads wrk --latency output on stdin; prints "requests_per_second p50 p99" on one line.
Non-2xx answers make the figure meaningless, so they stop the benchmark loudly."""
import re
import sys

text = sys.stdin.read()
rps = re.search(r"Requests/sec:\s+([0-9.]+)", text)
p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if not (rps and p50 and p99):
    sys.exit("wrk printed no figures:\n" + text)
if bad:
    sys.exit(f"wrk saw {bad.group(1)} error responses:\n" + text)
print(rps.group(1), p50.group(1), p99.group(1))
