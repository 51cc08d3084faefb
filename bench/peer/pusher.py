"""One SDK app for bench/growth.sh: a long-lived process that pushes the
Node SDK's real push (shared/fixtures/node-sdk-0.6.4/req2.pprof.gz) to
braid's /ingest every INTERVAL seconds as SERVICE, with the push's time
range, as the SDK does. Prints a line per push that was not answered 200.

  pusher.py URL SERVICE INTERVAL FIXTURE
"""
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: pusher.py URL SERVICE INTERVAL FIXTURE")
    url, service, interval, fixture = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    with open(fixture, "rb") as f:
        body = f.read()
    # start at a random phase, as apps started at different times would
    time.sleep(interval * (hash(service) % 1000) / 1000.0)
    while True:
        until = int(time.time())
        q = urllib.parse.urlencode({
            "name": service, "from": until - int(interval), "until": until,
            "format": "pprof", "spyName": "nodespy", "sampleRate": 100,
        })
        req = urllib.request.Request(f"{url}/ingest?{q}", data=body, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                if r.status != 200:
                    print(f"{service}: {r.status}", flush=True)
        except (urllib.error.URLError, OSError) as e:
            print(f"{service}: {e}", flush=True)
        time.sleep(interval)


if __name__ == "__main__":
    main()
