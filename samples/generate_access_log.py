#!/usr/bin/env python3
"""Writes samples/access.log: 500 synthetic Apache/nginx combined log lines for the quick start.

Deterministic (its own linear congruential generator, not Python's random, so the output never changes across
Python versions): run it again and the file is byte-identical. Everything is invented: example.com hosts,
documentation IP ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24). It includes the awkward things real
logs have: '-' sizes, an escaped quote in a user agent, a '-' request line (408), a request without protocol,
a non-UTC offset, an authenticated user.

Usage: python3 samples/generate_access_log.py > samples/access.log
"""

import sys


class Lcg:
    def __init__(self, seed):
        self.state = seed

    def next(self, n):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (self.state >> 33) % n

    def pick(self, items):
        return items[self.next(len(items))]


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
NETS = ["192.0.2.", "198.51.100.", "203.0.113."]
PATHS = ["/", "/index.html", "/about", "/blog/2026/05/kawa-dataflow", "/blog/feed.xml", "/static/app.js",
         "/static/site.css", "/images/logo.png", "/api/v1/orders", "/api/v1/orders/1042", "/api/v1/users?page=2",
         "/search?q=parquet+partitions", "/favicon.ico", "/robots.txt", "/login", "/docs/getting-started"]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "curl/8.5.0",
    "Mozilla/5.0 (compatible; ExampleBot/1.0; +https://bot.example.com/)",
    "kawa-probe/0.1 (\\\"synthetic\\\" check)",
]
REFERRERS = ["-", "-", "https://www.example.com/", "https://search.example.org/?q=kawa", "https://www.example.com/blog/"]


def line(rng, i):
    host = rng.pick(NETS) + str(1 + rng.next(254))
    user = "alice" if rng.next(25) == 0 else "-"
    second = i * 347  # ~48 hours spread over 500 lines
    day, rest = 17 + second // 86400, second % 86400
    hh, mm, ss = rest // 3600, (rest % 3600) // 60, rest % 60
    offset = "+0200" if rng.next(10) == 0 else "+0000"
    if offset == "+0200":
        hh_local = hh + 2
        day_local = day + hh_local // 24
        hh_local %= 24
    else:
        hh_local, day_local = hh, day
    ts = "%02d/%s/2026:%02d:%02d:%02d %s" % (day_local, MONTHS[4], hh_local, mm, ss, offset)

    roll = rng.next(100)
    method = "GET" if roll < 80 else ("POST" if roll < 92 else ("HEAD" if roll < 97 else "PUT"))
    path = rng.pick(PATHS)
    request = "%s %s HTTP/1.1" % (method, path)
    status = rng.pick([200] * 14 + [304, 304, 301, 404, 500, 503])
    size = "-" if status in (304,) or method == "HEAD" else str(200 + rng.next(90000))
    if i % 97 == 13:
        request, status, size = "-", 408, "-"
    elif i % 131 == 7:
        request = "GET /legacy"
    return '%s - %s [%s] "%s" %d %s "%s" "%s"' % (host, user, ts, request, status, size, rng.pick(REFERRERS), rng.pick(AGENTS))


def main():
    rng = Lcg(20260517)
    out = sys.stdout
    for i in range(500):
        out.write(line(rng, i) + "\n")


if __name__ == "__main__":
    main()
