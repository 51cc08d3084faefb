"""A Python app with the real Pyroscope SDK (pyroscope-io), for the tests.

Two threads hash with hashlib.pbkdf2_hmac (OpenSSL, the GIL released) for
RUN_SECONDS, each under its own route tag; the SDK pushes to
PYROSCOPE_SERVER_ADDRESS as PYROSCOPE_APPLICATION_NAME, with the pid and
thread labels. Prints "pid N" first, then shuts the SDK down (its last push).
GIL_ONLY=0 makes the SDK sample threads without the GIL too.
"""
import hashlib
import os
import sys
import threading
import time

import pyroscope

print("pid", os.getpid(), flush=True)
pyroscope.configure(
    application_name=os.environ["PYROSCOPE_APPLICATION_NAME"],
    server_address=os.environ["PYROSCOPE_SERVER_ADDRESS"],
    report_pid=True,
    report_thread_id=True,
    report_thread_name=True,
    gil_only=os.environ.get("GIL_ONLY", "1") != "0",
    tags={"region": "test"},
)
end = time.time() + float(os.environ.get("RUN_SECONDS", "12"))


def work(route):
    with pyroscope.tag_wrapper({"route": route}):
        while time.time() < end:
            hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 2000)


worker = threading.Thread(target=work, args=("/other",), name="worker-1")
worker.start()
work("/login")
worker.join()
pyroscope.shutdown()
sys.exit(0)
